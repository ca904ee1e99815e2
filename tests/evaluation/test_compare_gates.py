"""A/B comparison (metric table, flipped cases, win rate) and gates (verdicts, bad minimums)."""

from __future__ import annotations

from pathlib import Path

import pytest

from largeforge.errors import InvalidInput
from largeforge.evaluation import (
    TargetSpec,
    check_gate,
    compare,
    compare_records,
    evaluate,
    gate,
    load_suite,
    parse_minimums,
    set_alias_if_gate_passes,
)
from largeforge.registry.service import open_registry
from tests.evaluation.conftest import (
    BASE_URL,
    answers_by_user_text,
    fake_chat_endpoint,
    nano_suite,
    write_suite,
)

GOOD = {
    "Ana, 45, Paris": '{"name": "Ana", "age": 45, "city": "Paris"}',
    "Bo, 30, Lima": '{"name": "Bo", "age": 30, "city": "Lima"}',
    "Cy, 22, Oslo": '{"name": "Cy", "age": 22, "city": "Oslo"}',
}


def extraction_suite(folder: Path) -> Path:
    return write_suite(
        folder,
        nano_suite(
            name="mini-extraction",
            cases=[
                {"id": prompt.split(",")[0], "prompt": prompt, "expected": answer}
                for prompt, answer in GOOD.items()
            ],
            checks=[
                {"type": "json", "name": "valid"},
                {"type": "json", "column": "expected", "name": "match"},
            ],
        ),
    )


def test_compare_two_endpoints(database_url: str, tmp_path: Path) -> None:
    suite = load_suite(extraction_suite(tmp_path))
    baseline = fake_chat_endpoint(lambda body: '{"name": "?"}')  # valid JSON, always wrong
    candidate = fake_chat_endpoint(
        answers_by_user_text({**GOOD, "Cy, 22, Oslo": "Oslo!"})
    )  # 2 right, 1 not JSON
    result = compare(
        TargetSpec("old", base_url=BASE_URL),
        TargetSpec("new", base_url=BASE_URL),
        suite,
        http_clients=(baseline, candidate),
    )
    assert (result.wins, result.ties, result.losses) == (2, 0, 1)
    assert result.win_rate == pytest.approx(2 / 3)
    table = {row["metric"]: row for row in result.metrics}
    assert (table["check/match"]["a"], table["check/match"]["b"]) == (0.0, pytest.approx(2 / 3))
    assert table["check/valid"]["delta"] == pytest.approx(-1 / 3)
    assert table["pass_rate"]["a"] == 0.5 and table["pass_rate"]["b"] == pytest.approx(2 / 3)
    flips = {diff.id: diff.checks for diff in result.diffs}
    assert flips == {
        "Ana": {"match": {"a": False, "b": True}},
        "Bo": {"match": {"a": False, "b": True}},
        "Cy": {"valid": {"a": True, "b": False}},
    }
    assert result.to_dict()["a"]["target"] == f"old @ {BASE_URL}"


def test_results_of_different_suites_are_not_compared(database_url: str, tmp_path: Path) -> None:
    client = fake_chat_endpoint(lambda body: "{}")
    first = evaluate(
        TargetSpec("m", base_url=BASE_URL), load_suite(extraction_suite(tmp_path)), http_client=client
    )
    other = load_suite(write_suite(tmp_path, nano_suite(), "other.yaml"))
    second = evaluate(TargetSpec("m", base_url=BASE_URL), other, http_client=client)
    with pytest.raises(InvalidInput, match="are from different suites"):
        compare_records(first, second)


def test_compare_registry_versions_reuses_stored_results(
    database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path, nano_suite()))
    with open_registry() as registry:
        registry.register(tiny_model_dir, name="tiny")
        registry.register(tiny_model_dir, name="tiny")
    first = compare(TargetSpec("tiny:1"), TargetSpec("tiny:2"), suite)
    assert (first.wins, first.ties, first.losses, first.diffs) == (0, 2, 0, [])  # same weights, same answers
    again = compare(TargetSpec("tiny:1"), TargetSpec("tiny:2"), suite)
    assert (again.a.id, again.b.id, again.a.reused, again.b.reused) == (first.a.id, first.b.id, True, True)


def test_gate_verdicts_and_failures() -> None:
    summary = {
        "pass_rate": 0.75,
        "all_passed_rate": 0.5,
        "mean_score": 0.75,
        "latency_p50_s": 0.1,
        "latency_p95_s": 0.2,
        "checks": {"json": {"pass_rate": 1.0}, "exact": {"pass_rate": 0.5}},
        "metrics": {"bleu": 31.0},
    }
    passed = check_gate(summary, {"pass_rate": 0.7, "check/json": 1.0, "bleu": 30})
    assert passed.passed and passed.failures == []
    failed = check_gate(summary, {"pass_rate": 0.8, "check/json": 0.9, "check/exact": 0.6})
    assert not failed.passed
    assert [(f.metric, f.actual, f.required) for f in failed.failures] == [
        ("pass_rate", 0.75, 0.8),
        ("check/exact", 0.5, 0.6),
    ]
    assert failed.describe() == "pass_rate 0.75 < 0.8, check/json 1 >= 0.9, check/exact 0.5 < 0.6"
    with pytest.raises(
        InvalidInput, match=r"names check/jsn, which the result does not have; available: .*check/json"
    ):
        check_gate(summary, {"check/jsn": 0.5})
    with pytest.raises(InvalidInput, match="lower latency is better"):
        check_gate(summary, {"latency_p95_s": 1})


@pytest.mark.parametrize("item", ["pass_rate", "pass_rate=", "=0.5", "pass_rate=high", "pass_rate=nan"])
def test_bad_minimums_are_refused(item: str) -> None:
    with pytest.raises(InvalidInput, match="must look like METRIC=NUMBER"):
        parse_minimums([item])
    assert parse_minimums(["pass_rate=0.8", " check/json = 0.9"]) == {"pass_rate": 0.8, "check/json": 0.9}


def test_gate_and_gated_alias_on_an_endpoint_and_a_registry_version(
    database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path, nano_suite()))
    client = fake_chat_endpoint(lambda body: "IMPOSSIBLE-" + "1" * 40)
    assert gate(TargetSpec("m", base_url=BASE_URL), suite, {"pass_rate": 1.0}, http_client=client).passed
    with open_registry() as registry:
        registry.register(tiny_model_dir, name="tiny")
        registry.register(tiny_model_dir, name="other")
    with pytest.raises(InvalidInput, match="other:1 is not a version of tiny"):
        set_alias_if_gate_passes("tiny", "production", "other:1", suite, {"pass_rate": 0.1})
    refused = set_alias_if_gate_passes("tiny", "production", "1", suite, {"pass_rate": 0.9})
    assert (refused.moved, refused.gate.failures[0].actual) == (False, 0.5)
    moved = set_alias_if_gate_passes("tiny", "production", "1", suite, {"check/length": 1.0})
    assert (moved.moved, moved.from_version, moved.to_version) == (True, None, 1)
    with open_registry() as registry:
        (event,) = registry.alias_history("tiny", "production")
    assert event.reason is not None and event.reason.startswith("gate passed: suite nano (")
    assert "check/length 1 >= 1" in event.reason and moved.gate.evaluation is not None
    assert moved.gate.evaluation.id == refused.gate.evaluation.id  # the second gate reused the stored result
