"""Property-based fuzzing of the whole OpenAPI document (schemathesis + hypothesis): whatever the body,
query or path holds — wrong types, missing fields, huge values, unknown ids — the answer is a 4xx with
a message, never a 500.

Drives schemathesis' per-operation strategies with hypothesis directly (its pytest plugin does not
load under pytest 9), one hypothesis run per operation of the app's own OpenAPI document.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from largeforge.platform.app import create_platform_app
from largeforge.platform.deps import make_session_factory
from largeforge.platform.ratelimit import MemoryWindowCounter, RateLimiter
from tests.platform.conftest import make_cast

EXAMPLES_PER_OPERATION = 20


@pytest.mark.slow
def test_no_input_makes_a_server_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    # unlimited: 600+ requests from one key would otherwise turn into 429s and fuzz nothing
    unlimited = RateLimiter(MemoryWindowCounter(), default_rpm=0, default_tpm=0)
    app = create_platform_app(database_url=url, rate_limiter=unlimited)
    with make_session_factory(url)() as session:
        cast = make_cast(session)
    auth, alpha = cast.auth("root"), cast.projects["alpha"]  # a global admin reaches every route
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)  # fits the schema / breaks it on purpose
    for operation, mode in itertools.product(operations, modes):

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            if "project_id" in (case.path_parameters or {}) and len(str(case.body)) % 2 == 0:
                # half the time inside a real project, so validation past the access check is fuzzed too
                case.path_parameters["project_id"] = alpha
            response = case.call(headers={**(case.headers or {}), **auth})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                assert response.json().get("error", {}).get("message"), f"{where}: {response.text[:300]}"

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to break: the operation takes no input
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert failures == []
    assert 429 not in statuses, statuses
    assert sum(count for status, count in statuses.items() if status < 300) >= 5, (
        statuses
    )  # got past validation
    print(sorted(statuses.items()))
