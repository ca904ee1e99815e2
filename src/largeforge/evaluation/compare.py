"""A/B comparison of two targets on one suite: metric table, per-case flips, win rate.

Owns what "B is better than A" means. A case is a win for B when B's weighted score (see
``runner.py``) is higher than A's, a loss when lower, a tie when equal; the win rate is wins / cases.
Only results of the very same suite (equal digests) are compared: anything else compares different
questions. Running or reusing the two evaluations is ``service.evaluate``'s job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.evaluation.runner import flat_metrics
from largeforge.evaluation.service import EvaluationRecord, evaluate
from largeforge.evaluation.suites import Suite
from largeforge.evaluation.targets import TargetSpec
from largeforge.progress import ProgressReporter

# Weighted scores are sums of floats; closer than this they are the same score.
_TIE = 1e-9


@dataclass(frozen=True)
class CaseDiff:
    """A case where at least one check passes for one target and fails for the other."""

    id: str
    checks: dict[str, dict[str, bool]]  # check -> {"a": passed, "b": passed}, flipped checks only
    a_score: float
    b_score: float
    a_completion: str
    b_completion: str


@dataclass
class Comparison:
    suite: str
    suite_digest: str
    a: EvaluationRecord
    b: EvaluationRecord
    metrics: list[dict[str, Any]] = field(default_factory=list)  # {"metric", "a", "b", "delta"}
    diffs: list[CaseDiff] = field(default_factory=list)
    wins: int = 0
    ties: int = 0
    losses: int = 0

    @property
    def win_rate(self) -> float:
        """Share of cases where B's weighted score beats A's."""
        total = self.wins + self.ties + self.losses
        return self.wins / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "suite_digest": self.suite_digest,
            "a": {
                "target": self.a.target,
                "version": self.a.version,
                "id": self.a.id,
                "reused": self.a.reused,
            },
            "b": {
                "target": self.b.target,
                "version": self.b.version,
                "id": self.b.id,
                "reused": self.b.reused,
            },
            "metrics": self.metrics,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "win_rate": self.win_rate,
            "diffs": [asdict(diff) for diff in self.diffs],
        }


def _metric_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    flat_a, flat_b = flat_metrics(a), flat_metrics(b)
    names = list(flat_a) + [name for name in flat_b if name not in flat_a]
    rows = []
    for name in names:
        value_a, value_b = flat_a.get(name), flat_b.get(name)
        delta = value_b - value_a if value_a is not None and value_b is not None else None
        rows.append({"metric": name, "a": value_a, "b": value_b, "delta": delta})
    return rows


def compare_records(a: EvaluationRecord, b: EvaluationRecord) -> Comparison:
    """Compare two stored evaluations of the same suite.

    Raises:
        InvalidInput: the results come from different suites (or different versions of one suite).
    """
    if a.suite_digest != b.suite_digest:
        raise InvalidInput(
            f"results {a.id} and {b.id} are from different suites ({a.suite} {a.suite_digest[:12]} vs "
            f"{b.suite} {b.suite_digest[:12]}); compare results of the same suite file"
        )
    comparison = Comparison(a.suite, a.suite_digest, a, b, _metric_rows(a.summary, b.summary))
    b_cases = {case["id"]: case for case in b.cases}
    for case_a in a.cases:
        case_b = b_cases[case_a["id"]]  # same digest, same case ids
        if case_b["score"] > case_a["score"] + _TIE:
            comparison.wins += 1
        elif case_a["score"] > case_b["score"] + _TIE:
            comparison.losses += 1
        else:
            comparison.ties += 1
        flipped = {
            name: {"a": passed, "b": case_b["passed"][name]}
            for name, passed in case_a["passed"].items()
            if passed != case_b["passed"][name]
        }
        if flipped:
            comparison.diffs.append(
                CaseDiff(
                    case_a["id"],
                    flipped,
                    case_a["score"],
                    case_b["score"],
                    case_a["completion"],
                    case_b["completion"],
                )
            )
    return comparison


def compare(
    a: TargetSpec,
    b: TargetSpec,
    suite: Suite,
    *,
    reuse: bool = True,
    progress: ProgressReporter | None = None,
    http_clients: tuple[Any | None, Any | None] = (None, None),
) -> Comparison:
    """Evaluate (or reuse stored results of) ``a`` and ``b`` on ``suite`` and compare them."""
    first = evaluate(a, suite, reuse=reuse, progress=progress, http_client=http_clients[0])
    second = evaluate(b, suite, reuse=reuse, progress=progress, http_client=http_clients[1])
    return compare_records(first, second)


__all__ = ["CaseDiff", "Comparison", "compare", "compare_records"]
