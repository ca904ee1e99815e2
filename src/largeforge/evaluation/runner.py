"""Run a suite against one target: generate every case, score it with the suite's checks, summarise.

Owns the per-case record (completion, each check's score and pass, latency, tokens/s) and the summary
(per-check and overall pass rates, latency percentiles, throughput, optional BLEU/ROUGE). Generation
is the target's (``targets.py``), scoring the checks' (``largeforge.checks``); storing results belongs
to ``service.py``.

Definitions, used everywhere results are compared or gated:
    a case passes a check when its score reaches the check's pass score (1.0; a judge sets its own);
    a case's weighted score = sum(weight * score) / sum(weight) over the suite's checks;
    pass_rate = mean over cases of sum(weight * passed) / sum(weight) (the weighted pass rate);
    all_passed_rate = share of cases that pass every check.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from largeforge.checks import CheckFn, build_check
from largeforge.evaluation.cases import case_messages, case_row
from largeforge.evaluation.suites import Suite, SuiteCase, suite_digest
from largeforge.evaluation.targets import OpenedTarget
from largeforge.progress import NullProgress, ProgressReporter


@dataclass
class CaseResult:
    """One case: what the model said and how each check scored it (scores in [0, 1])."""

    id: str
    messages: list[dict[str, str]]
    expected: Any
    completion: str
    scores: dict[str, float]
    passed: dict[str, bool]
    score: float
    weighted_pass: float
    latency_s: float
    completion_tokens: int | None = None
    tokens_per_second: float | None = None

    @property
    def all_passed(self) -> bool:
        return all(self.passed.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"all_passed": self.all_passed}


@dataclass
class EvalRun:
    """A finished evaluation: the suite (name and digest), the target, every case and the summary."""

    suite: str
    suite_digest: str
    target: dict[str, Any]
    cases: list[CaseResult]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "suite_digest": self.suite_digest,
            **self.target,
            "summary": self.summary,
            "cases": [case.to_dict() for case in self.cases],
        }


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _score_case(
    suite: Suite, case: SuiteCase, completion: str, checks: dict[str, CheckFn]
) -> tuple[dict[str, float], dict[str, bool]]:
    row = case_row(case)
    scores: dict[str, float] = {}
    passed: dict[str, bool] = {}
    for entry in suite.checks:
        name = str(entry.name)
        scores[name] = checks[name](completion, row)
        passed[name] = scores[name] >= entry.check.pass_score()
    return scores, passed


def run_case(suite: Suite, case: SuiteCase, target: OpenedTarget, checks: dict[str, CheckFn]) -> CaseResult:
    """Generate one completion (timed) and score it with every check."""
    messages = case_messages(suite, case)
    started = time.perf_counter()
    completion = target.teacher.complete(
        messages, temperature=suite.generation.temperature, max_tokens=suite.generation.max_tokens
    )
    latency = time.perf_counter() - started
    scores, passed = _score_case(suite, case, completion, checks)
    weights = {str(entry.name): entry.weight for entry in suite.checks}
    total = sum(weights.values())
    tokens = target.count_tokens(completion) if target.count_tokens is not None else None
    return CaseResult(
        id=case.id,
        messages=messages,
        expected=case.expected,
        completion=completion,
        scores=scores,
        passed=passed,
        score=sum(weights[n] * s for n, s in scores.items()) / total,
        weighted_pass=sum(weights[n] for n, ok in passed.items() if ok) / total,
        latency_s=latency,
        completion_tokens=tokens,
        tokens_per_second=tokens / latency if tokens is not None and latency > 0 else None,
    )


def summarize(suite: Suite, cases: list[CaseResult]) -> dict[str, Any]:
    """Pass rates (overall, weighted; per check), mean score, latency p50/p95 and tokens/s."""
    count = len(cases)
    latencies = [case.latency_s for case in cases]
    known = [case for case in cases if case.completion_tokens is not None]
    generated = sum(case.completion_tokens or 0 for case in known)
    seconds = sum(case.latency_s for case in known)
    return {
        "cases": count,
        "pass_rate": sum(case.weighted_pass for case in cases) / count,
        "all_passed_rate": sum(case.all_passed for case in cases) / count,
        "mean_score": sum(case.score for case in cases) / count,
        "checks": {
            str(entry.name): {
                "pass_rate": sum(case.passed[str(entry.name)] for case in cases) / count,
                "mean_score": sum(case.scores[str(entry.name)] for case in cases) / count,
                "weight": entry.weight,
            }
            for entry in suite.checks
        },
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "completion_tokens": generated if known else None,
        "tokens_per_second": generated / seconds if known and seconds > 0 else None,
    }


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The summary as one flat mapping, the names gates and registry metrics use:
    ``pass_rate``, ``all_passed_rate``, ``mean_score``, ``check/<name>``, ``bleu``, ``rougeL`` …"""
    flat: dict[str, float] = {
        key: float(summary[key])
        for key in ("pass_rate", "all_passed_rate", "mean_score", "latency_p50_s", "latency_p95_s")
    }
    if summary.get("tokens_per_second") is not None:
        flat["tokens_per_second"] = float(summary["tokens_per_second"])
    for name, check in summary["checks"].items():
        flat[f"check/{name}"] = float(check["pass_rate"])
    for name, value in (summary.get("metrics") or {}).items():
        if value is not None:
            flat[name] = float(value)
    return flat


def run_suite(suite: Suite, target: OpenedTarget, *, progress: ProgressReporter | None = None) -> EvalRun:
    """Evaluate ``target`` on every case of a resolved suite (see ``suites.load_suite``).

    Checks are built once (a judge loads or reaches its model here), then each case is generated and
    scored in order; the progress bar shows the pass rate so far.

    Raises:
        NotFound / InvalidInput: a check cannot be built or scores wrongly (a python check returning 2).
        Unavailable: an endpoint (target or judge) cannot be reached.
    """
    from largeforge.evaluation.metrics import text_metrics

    checks = {str(entry.name): build_check(entry.check) for entry in suite.checks}
    results: list[CaseResult] = []
    reporter = progress or NullProgress()
    with reporter.task(f"Evaluating {target.resolved.label} on {suite.name}", total=len(suite.cases)) as task:
        for case in suite.cases:
            results.append(run_case(suite, case, target, checks))
            task.advance(pass_rate=sum(r.weighted_pass for r in results) / len(results))
    summary = summarize(suite, results)
    if suite.metrics:
        pairs = [(r.completion, r.expected) for r in results if r.expected is not None]
        summary["metrics"] = text_metrics(suite.metrics, [p for p, _ in pairs], [e for _, e in pairs])
    return EvalRun(suite.name, suite_digest(suite), target.resolved.to_dict(), results, summary)


__all__ = ["CaseResult", "EvalRun", "flat_metrics", "percentile", "run_case", "run_suite", "summarize"]
