"""Evaluation: suites of cases scored by ``largeforge.checks``, run against registry versions, local
model directories or OpenAI-compatible endpoints; results stored, compared, gated, and filed on the
registry version they measured.

    suite = load_suite("examples/suites/extraction.yaml")
    record = evaluate(TargetSpec("tiny-sft:1"), suite)          # runs, stores, adds registry metrics
    record.summary["pass_rate"], record.summary["checks"]["json_valid"]["pass_rate"]
    gate(TargetSpec("tiny-sft:1"), suite, {"pass_rate": 0.8}).passed
    compare(TargetSpec("tiny:1"), TargetSpec("tiny-sft:1"), suite).win_rate

Nothing below this layer imports it (see ARCHITECTURE.md); models are loaded lazily, on first use.
"""

from largeforge.evaluation.compare import CaseDiff, Comparison, compare, compare_records
from largeforge.evaluation.gates import (
    GateCheck,
    GateResult,
    Promotion,
    check_gate,
    gate,
    parse_minimums,
    set_alias_if_gate_passes,
)
from largeforge.evaluation.harness import run_lm_eval
from largeforge.evaluation.metrics import PerplexityResult, bleu, perplexity, rouge, text_metrics
from largeforge.evaluation.runner import CaseResult, EvalRun, flat_metrics, run_suite
from largeforge.evaluation.service import (
    EvaluationRecord,
    evaluate,
    list_results,
    measure_perplexity,
    open_evaluation,
)
from largeforge.evaluation.suites import Suite, load_suite, suite_digest, validate_suite
from largeforge.evaluation.targets import ResolvedTarget, TargetSpec, open_target, resolve_target

__all__ = [
    "CaseDiff",
    "CaseResult",
    "Comparison",
    "EvalRun",
    "EvaluationRecord",
    "GateCheck",
    "GateResult",
    "PerplexityResult",
    "Promotion",
    "ResolvedTarget",
    "Suite",
    "TargetSpec",
    "bleu",
    "check_gate",
    "compare",
    "compare_records",
    "evaluate",
    "flat_metrics",
    "gate",
    "list_results",
    "load_suite",
    "measure_perplexity",
    "open_evaluation",
    "open_target",
    "parse_minimums",
    "perplexity",
    "resolve_target",
    "rouge",
    "run_lm_eval",
    "run_suite",
    "set_alias_if_gate_passes",
    "suite_digest",
    "text_metrics",
    "validate_suite",
]
