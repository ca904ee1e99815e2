"""The runner on the tiny model (in-process) and on a mocked endpoint: per-case records, pass rates,
latency, BLEU/ROUGE, progress events."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from largeforge.errors import InvalidInput
from largeforge.evaluation import load_suite, run_suite, validate_suite
from largeforge.evaluation.cases import case_messages
from largeforge.evaluation.runner import percentile
from largeforge.evaluation.targets import ResolvedTarget, open_target
from largeforge.progress import JsonLinesProgress
from tests.evaluation.conftest import (
    BASE_URL,
    EXAMPLE_SUITE,
    answers_by_user_text,
    fake_chat_endpoint,
    nano_suite,
)

GOOD = '{"name": "Ana Brown", "age": 45, "city": "Paris"}'


def local(path: Path) -> ResolvedTarget:
    return ResolvedTarget(str(path), "path", path=str(path))


def endpoint(model: str = "served") -> ResolvedTarget:
    return ResolvedTarget(f"{model} @ {BASE_URL}", "endpoint", base_url=BASE_URL, model=model)


def test_tiny_model_passes_one_check_and_fails_the_other(tiny_model_dir: Path) -> None:
    suite = validate_suite(nano_suite())
    stream = io.StringIO()
    run = run_suite(suite, open_target(local(tiny_model_dir)), progress=JsonLinesProgress(stream))
    assert [case.passed for case in run.cases] == [{"length": True, "regex": False}] * 2
    assert run.summary["checks"]["length"]["pass_rate"] == 1.0
    assert run.summary["checks"]["regex"]["pass_rate"] == 0.0
    assert (run.summary["pass_rate"], run.summary["all_passed_rate"]) == (0.5, 0.0)
    assert all(case.latency_s > 0 and isinstance(case.completion_tokens, int) for case in run.cases)
    assert 0 < run.summary["latency_p50_s"] <= run.summary["latency_p95_s"]
    assert run.cases[0].messages == [{"role": "user", "content": "Maria Lopez, 34, lives in Lisbon."}]
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["start", "progress", "progress", "finish"]
    assert events[-2]["pass_rate"] == 0.5 and events[0]["total"] == 2
    # Greedy decoding: the same model gives the same completions again.
    again = run_suite(suite, open_target(local(tiny_model_dir)))
    assert [c.completion for c in again.cases] == [c.completion for c in run.cases]


def test_weighted_pass_rate_scores_and_text_metrics_on_an_endpoint() -> None:
    document = nano_suite(
        cases=[
            {"id": "right", "prompt": "Ana Brown, 45, lives in Paris.", "expected": GOOD},
            {
                "id": "valid-but-wrong",
                "prompt": "Ana Brown, 45, lives in Oslo.",
                "expected": GOOD.replace("Paris", "Oslo"),
            },
            {
                "id": "not-json",
                "prompt": "Ana Brown, 45, lives in Rome.",
                "expected": GOOD.replace("Paris", "Rome"),
            },
        ],
        checks=[
            {"type": "json", "name": "valid"},
            {"type": "json", "column": "expected", "name": "match", "weight": 3},
        ],
        metrics=["bleu", "rouge"],
    )
    replies = {
        "Ana Brown, 45, lives in Paris.": GOOD,
        "Ana Brown, 45, lives in Oslo.": GOOD,
        "Ana Brown, 45, lives in Rome.": "Rome!",
    }
    seen: list[object] = []
    client = fake_chat_endpoint(answers_by_user_text(replies), seen)
    run = run_suite(validate_suite(document), open_target(endpoint(), http_client=client))
    assert [(c.score, c.weighted_pass, c.all_passed) for c in run.cases] == [
        (1.0, 1.0, True),
        (0.25, 0.25, False),
        (0.0, 0.0, False),
    ]
    summary = run.summary
    assert summary["pass_rate"] == pytest.approx((1 + 0.25 + 0) / 3)
    assert summary["all_passed_rate"] == pytest.approx(1 / 3)
    assert summary["checks"]["valid"]["pass_rate"] == pytest.approx(2 / 3)
    assert summary["checks"]["match"] == {
        "pass_rate": pytest.approx(1 / 3),
        "mean_score": pytest.approx(1 / 3),
        "weight": 3.0,
    }
    assert (
        summary["tokens_per_second"] is None and summary["completion_tokens"] is None
    )  # an endpoint's tokens are unknown
    assert 0 < summary["metrics"]["bleu"] < 100 and 0 < summary["metrics"]["rougeL"] < 1
    assert len(seen) == 3 and run.target == {
        "target": f"served @ {BASE_URL}",
        "kind": "endpoint",
        "version": None,
    }


def test_perfect_answers_score_full_bleu_and_rouge() -> None:
    document = nano_suite(
        cases=[
            {"id": "a", "prompt": "q1", "expected": "the cat sat on the mat"},
            {"id": "b", "prompt": "q2", "expected": "hello there world"},
        ],
        checks=[{"type": "exact", "column": "expected"}],
        metrics=["bleu", "rouge"],
    )
    client = fake_chat_endpoint(
        answers_by_user_text({"q1": "the cat sat on the mat", "q2": "hello there world"})
    )
    run = run_suite(validate_suite(document), open_target(endpoint(), http_client=client))
    metrics = run.summary["metrics"]
    assert metrics["bleu"] == pytest.approx(100.0)
    assert (metrics["rouge1"], metrics["rouge2"], metrics["rougeL"]) == (1.0, 1.0, 1.0)
    assert run.summary["pass_rate"] == 1.0


def test_a_check_that_breaks_its_contract_stops_the_run(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def check(completion, row):\n    return 7\n")
    document = nano_suite(checks=[{"type": "python", "function": f"{tmp_path / 'bad.py'}:check"}])
    client = fake_chat_endpoint(lambda body: "x")
    with pytest.raises(InvalidInput, match="returned 7"):
        run_suite(validate_suite(document), open_target(endpoint(), http_client=client))


def test_percentiles_interpolate_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert (percentile(values, 50), percentile(values, 95), percentile([7.0], 95)) == (
        2.5,
        pytest.approx(3.85),
        7.0,
    )


def test_the_example_suite_passes_a_model_that_answers_perfectly() -> None:
    suite = load_suite(EXAMPLE_SUITE)
    perfect = {case_messages(suite, case)[-1]["content"]: str(case.expected) for case in suite.cases}
    run = run_suite(
        suite, open_target(endpoint(), http_client=fake_chat_endpoint(answers_by_user_text(perfect)))
    )
    assert run.summary["pass_rate"] == 1.0 and run.summary["cases"] == len(suite.cases) == 66
    assert run.summary["metrics"]["bleu"] == pytest.approx(100.0) and run.summary["metrics"]["rougeL"] == 1.0
