"""Quality gates: minimum scores a target must reach on a suite, and alias moves that require them.

Owns the gate's verdict and the gated alias move (what ``models alias set --require-gate`` means).
A gate names metrics the way ``runner.flat_metrics`` does (``pass_rate``, ``all_passed_rate``,
``check/<name>``, ``bleu``, ``rougeL`` …); a name the result does not have is an error, never a pass,
so a typo cannot wave a model through.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.evaluation.runner import flat_metrics
from largeforge.evaluation.service import EvaluationRecord, evaluate, resolve
from largeforge.evaluation.suites import Suite
from largeforge.evaluation.targets import TargetSpec
from largeforge.progress import ProgressReporter


@dataclass(frozen=True)
class GateCheck:
    metric: str
    actual: float
    required: float

    @property
    def passed(self) -> bool:
        return self.actual >= self.required


@dataclass
class GateResult:
    """The verdict: ``passed`` only when every minimum is reached; ``failures`` say by how much not."""

    checks: list[GateCheck]
    evaluation: EvaluationRecord | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]

    def describe(self) -> str:
        """``pass_rate 0.85 >= 0.8, check/json 1 >= 0.9`` — the alias history's reason."""
        return ", ".join(
            f"{c.metric} {c.actual:.4g} {'>=' if c.passed else '<'} {c.required:.4g}" for c in self.checks
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [asdict(c) | {"passed": c.passed} for c in self.checks],
            "failures": [asdict(c) for c in self.failures],
            "evaluation": self.evaluation.id if self.evaluation else None,
            "target": self.evaluation.target if self.evaluation else None,
        }


def parse_minimums(items: list[str]) -> dict[str, float]:
    """``["pass_rate=0.8", "check/json=0.9"]`` → ``{"pass_rate": 0.8, "check/json": 0.9}``.

    Raises:
        InvalidInput: an item is not METRIC=NUMBER, or no minimum is given.
    """
    minimums: dict[str, float] = {}
    for item in items:
        metric, sep, raw = item.partition("=")
        metric = metric.strip()
        try:
            value = float(raw) if sep and metric else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InvalidInput(f"--min {item!r} must look like METRIC=NUMBER, e.g. --min pass_rate=0.8")
        minimums[metric] = value
    if not minimums:
        raise InvalidInput("a gate needs at least one minimum, e.g. --min pass_rate=0.8")
    return minimums


def check_gate(summary: dict[str, Any], minimums: dict[str, float]) -> GateResult:
    """Hold an evaluation summary to ``minimums``.

    Raises:
        InvalidInput: a minimum names a metric the summary does not have (the message lists them).
    """
    metrics = flat_metrics(summary)
    timed = [name for name in minimums if name.startswith("latency_")]
    if timed:
        raise InvalidInput(
            f"{', '.join(timed)}: a gate holds minimums, and lower latency is better; gate on scores"
        )
    unknown = [name for name in minimums if name not in metrics]
    if unknown:
        raise InvalidInput(
            f"the gate names {', '.join(unknown)}, which the result does not have; "
            f"available: {', '.join(metrics)}"
        )
    return GateResult([GateCheck(name, metrics[name], required) for name, required in minimums.items()])


def gate(
    target: TargetSpec,
    suite: Suite,
    minimums: dict[str, float],
    *,
    reuse: bool = True,
    progress: ProgressReporter | None = None,
    http_client: Any | None = None,
) -> GateResult:
    """Evaluate ``target`` (reusing a stored result of the same registry version and suite) and gate it."""
    evaluation = evaluate(target, suite, reuse=reuse, progress=progress, http_client=http_client)
    result = check_gate(evaluation.summary, minimums)
    result.evaluation = evaluation
    return result


@dataclass
class Promotion:
    """A gated alias move: ``moved`` is False (and the alias untouched) when the gate failed."""

    alias: str
    gate: GateResult
    moved: bool = False
    from_version: int | None = None
    to_version: int | None = None
    reason: str | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "moved": self.moved,
            "from": self.from_version,
            "to": self.to_version,
            "reason": self.reason,
            "gate": self.gate.to_dict(),
        }


def set_alias_if_gate_passes(
    name: str,
    alias: str,
    version: str,
    suite: Suite,
    minimums: dict[str, float],
    *,
    reuse: bool = True,
    progress: ProgressReporter | None = None,
) -> Promotion:
    """Point ``NAME@alias`` at ``version`` only if that version passes the gate on ``suite``.

    ``version`` is a number (``3``) or a reference of the same model (``tiny:3``, ``tiny@candidate``).
    The reason kept in the alias history names the suite, its digest, the evaluation and the numbers.

    Raises:
        NotFound: no such model or version. InvalidInput: a version of another model, a bad gate.
    """
    from largeforge.registry.service import open_registry

    ref = f"{name}:{version}" if version.isdigit() else version
    target = resolve(TargetSpec(ref))
    if target.version_ref is None or target.version_ref.rpartition(":")[0] != name:
        raise InvalidInput(f"{version} is not a version of {name}; an alias of {name} must point at {name}")
    result = gate(TargetSpec(target.version_ref), suite, minimums, reuse=reuse, progress=progress)
    promotion = Promotion(f"{name}@{alias}", result)
    if not result.passed:
        return promotion
    assert result.evaluation is not None  # gate() always attaches it
    promotion.reason = (
        f"gate passed: suite {suite.name} ({result.evaluation.suite_digest[:12]}), "
        f"eval {result.evaluation.id}: {result.describe()}"
    )
    with open_registry() as registry:
        event = registry.set_alias(name, alias, target.version_ref, reason=promotion.reason)
    promotion.moved, promotion.from_version, promotion.to_version = True, event.from_version, event.to_version
    return promotion


__all__ = [
    "GateCheck",
    "GateResult",
    "Promotion",
    "check_gate",
    "gate",
    "parse_minimums",
    "set_alias_if_gate_passes",
]
