"""``largeforge eval …``: run suites, compare targets, gate versions, gated alias moves, perplexity."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from largeforge.cli.output import (
    JSON_OPTION,
    progress_for,
    quiet_libraries,
    run_command,
    stdout_console,
)

app = typer.Typer(help="Evaluate models on suites: scores, comparisons, gates.", no_args_is_help=True)

MIN_OPTION = typer.Option(..., "--min", help="Minimum as METRIC=VALUE, e.g. pass_rate=0.8 or check/json=0.9.")
FRESH_OPTION = typer.Option(False, "--fresh", help="Run again even if this version has a stored result.")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _render_record(doc: dict[str, Any], failing: int = 10) -> None:
    summary = doc["summary"]
    title = f"{doc['suite']} on {doc['target']}" + (" (stored result)" if doc.get("reused") else "")
    table = Table(title=title)
    for column in ("check", "weight", "pass rate", "mean score"):
        table.add_column(column, justify="left" if column == "check" else "right")
    for name, check in summary["checks"].items():
        table.add_row(name, _fmt(check["weight"]), _fmt(check["pass_rate"]), _fmt(check["mean_score"]))
    table.add_section()
    table.add_row("[bold]overall (weighted)[/]", "", _fmt(summary["pass_rate"]), _fmt(summary["mean_score"]))
    table.add_row("all checks passed", "", _fmt(summary["all_passed_rate"]), "")
    console = stdout_console()
    console.print(table)
    extras = {
        "cases": summary["cases"],
        "latency p50 / p95 (s)": f"{summary['latency_p50_s']:.3f} / {summary['latency_p95_s']:.3f}",
        "tokens/s": _fmt(summary.get("tokens_per_second")),
        **{name: _fmt(value) for name, value in (summary.get("metrics") or {}).items()},
        "result id": doc["id"],
    }
    console.print("  ".join(f"[dim]{k}:[/] {v}" for k, v in extras.items()), highlight=False)
    failed = [case for case in doc["cases"] if not case["all_passed"]][:failing]
    if failed:
        cases = Table(title=f"First {len(failed)} failing case(s)")
        for column in ("case", "failed checks", "completion", "expected"):
            cases.add_column(column, overflow="fold")
        for case in failed:
            missed = ", ".join(n for n, ok in case["passed"].items() if not ok)
            cases.add_row(case["id"], missed, case["completion"][:120], str(case["expected"])[:120])
        console.print(cases)


def _spec(target: str, base_url: str | None, model: str | None, api_key_env: str | None) -> Any:
    from largeforge.evaluation import TargetSpec

    return TargetSpec(target, base_url=base_url, model=model, api_key_env=api_key_env)


@app.command("run")
def run(
    target: str = typer.Argument(
        ..., help="NAME, NAME:N, NAME@ALIAS, a model directory, or (with --base-url) a label."
    ),
    suite: str = typer.Argument(..., help="Suite YAML (see examples/suites/)."),
    base_url: str | None = typer.Option(
        None, help="Evaluate an OpenAI-compatible endpoint, e.g. http://host:8000/v1."
    ),
    model: str | None = typer.Option(None, help="The endpoint's model name (default: TARGET)."),
    api_key_env: str | None = typer.Option(None, help="Environment variable holding the endpoint's API key."),
    reuse: bool = typer.Option(False, help="Reuse a stored result of the same registry version and suite."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Evaluate a target on a suite; the result is stored (and added to a registry version's metrics)."""
    from largeforge.evaluation import evaluate, load_suite

    quiet_libraries()

    def action() -> dict[str, Any]:
        spec = _spec(target, base_url, model, api_key_env)
        return evaluate(spec, load_suite(suite), reuse=reuse, progress=progress_for(json_output)).to_dict()

    run_command(json_output, action, render=_render_record, to_json=lambda doc: doc)


@app.command("compare")
def compare(
    a: str = typer.Argument(..., help="Target A (the baseline)."),
    b: str = typer.Argument(..., help="Target B (the candidate)."),
    suite: str = typer.Argument(..., help="Suite YAML."),
    a_base_url: str | None = typer.Option(None, help="A is the endpoint at this URL (A is its model name)."),
    b_base_url: str | None = typer.Option(None, help="B is the endpoint at this URL (B is its model name)."),
    api_key_env: str | None = typer.Option(None, help="Environment variable with the endpoints' API key."),
    fresh: bool = FRESH_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """A/B: pass rates side by side, cases that flip, and B's win rate over A."""
    from largeforge.evaluation import compare as compare_targets
    from largeforge.evaluation import load_suite

    quiet_libraries()

    def action() -> dict[str, Any]:
        spec_a, spec_b = _spec(a, a_base_url, None, api_key_env), _spec(b, b_base_url, None, api_key_env)
        result = compare_targets(
            spec_a, spec_b, load_suite(suite), reuse=not fresh, progress=progress_for(json_output)
        )
        return result.to_dict()

    def render(doc: dict[str, Any]) -> None:
        table = Table(title=f"{doc['suite']}: A = {doc['a']['target']}, B = {doc['b']['target']}")
        for column in ("metric", "A", "B", "B - A"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for row in doc["metrics"]:
            delta = row["delta"]
            # Green means "B is better": for latencies that is a negative delta.
            better = -delta if delta is not None and row["metric"].startswith("latency_") else delta
            shown = (
                "-"
                if delta is None or better is None
                else f"[{'green' if better > 0 else 'red' if better < 0 else 'dim'}]{delta:+.4g}[/]"
            )
            table.add_row(row["metric"], _fmt(row["a"]), _fmt(row["b"]), shown)
        console = stdout_console()
        console.print(table)
        console.print(
            f"B wins {doc['wins']}, ties {doc['ties']}, loses {doc['losses']} "
            f"(win rate {doc['win_rate']:.1%}); {len(doc['diffs'])} case(s) flip a check",
            highlight=False,
        )
        if doc["diffs"]:
            diffs = Table(title="Cases that pass for one and fail for the other")
            for column in ("case", "checks (A → B)", "A", "B"):
                diffs.add_column(column, overflow="fold")
            for diff in doc["diffs"][:20]:
                flips = ", ".join(
                    f"{n}: {'✓' if v['a'] else '✗'}→{'✓' if v['b'] else '✗'}"
                    for n, v in diff["checks"].items()
                )
                diffs.add_row(diff["id"], flips, diff["a_completion"][:80], diff["b_completion"][:80])
            console.print(diffs)

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


def _render_gate(doc: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for column in ("metric", "actual", "required", ""):
        table.add_column(column)
    for check in doc["checks"]:
        mark = "[green]pass[/]" if check["passed"] else "[bold red]FAIL[/]"
        table.add_row(check["metric"], _fmt(check["actual"]), _fmt(check["required"]), mark)
    stdout_console().print(table)


@app.command("gate")
def gate(
    version: str = typer.Argument(..., help="NAME:N, NAME@ALIAS or a model directory."),
    suite: str = typer.Argument(..., help="Suite YAML."),
    minimum: list[str] = MIN_OPTION,
    fresh: bool = FRESH_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Exit 0 when every minimum is reached, 1 (with what failed) when not."""
    from largeforge.evaluation import TargetSpec, load_suite, parse_minimums
    from largeforge.evaluation import gate as run_gate

    quiet_libraries()

    def action() -> dict[str, Any]:
        minimums = parse_minimums(minimum)
        result = run_gate(
            TargetSpec(version),
            load_suite(suite),
            minimums,
            reuse=not fresh,
            progress=progress_for(json_output),
        )
        return result.to_dict()

    def render(doc: dict[str, Any]) -> None:
        verdict = "[green]passed[/]" if doc["passed"] else "[bold red]failed[/]"
        _render_gate(doc, f"Gate on {doc['target']}: {verdict}")

    doc = run_command(json_output, action, render=render, to_json=lambda doc: doc)
    if not doc["passed"]:
        raise typer.Exit(code=1)


@app.command("alias")
def alias(
    name: str = typer.Argument(..., help="Registered model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="Alias to move, e.g. production."),
    version: str = typer.Argument(..., help="Version number or reference of NAME."),
    suite: str = typer.Option(..., help="Suite YAML the version must pass."),
    minimum: list[str] = MIN_OPTION,
    fresh: bool = FRESH_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Move NAME@ALIAS to VERSION only if VERSION passes the gate (exit 1 and no move otherwise)."""
    from largeforge.evaluation import load_suite, parse_minimums, set_alias_if_gate_passes

    quiet_libraries()

    def action() -> dict[str, Any]:
        minimums = parse_minimums(minimum)
        return set_alias_if_gate_passes(
            name,
            alias_name,
            version,
            load_suite(suite),
            minimums,
            reuse=not fresh,
            progress=progress_for(json_output),
        ).to_dict()

    def render(doc: dict[str, Any]) -> None:
        verdict = "passed" if doc["gate"]["passed"] else "failed"
        _render_gate(doc["gate"], f"Gate for {doc['alias']} → {version}: {verdict}")
        if doc["moved"]:
            stdout_console().print(f"{doc['alias']}: {doc['from'] or '-'} → {doc['to']}")
        else:
            stdout_console().print(f"[bold red]{doc['alias']} not moved[/]: the gate failed", highlight=False)

    doc = run_command(json_output, action, render=render, to_json=lambda doc: doc)
    if not doc["moved"]:
        raise typer.Exit(code=1)


@app.command("perplexity")
def perplexity(
    target: str = typer.Argument(..., help="NAME, NAME:N, NAME@ALIAS or a model directory."),
    dataset: str = typer.Argument(..., help="A text or conversation dataset file, or a stored version."),
    max_length: int = typer.Option(1024, min=2, help="Truncate each row to this many tokens."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Perplexity (conversations: assistant tokens only)."""
    from largeforge.evaluation import TargetSpec, measure_perplexity

    quiet_libraries()

    def action() -> dict[str, Any]:
        spec = TargetSpec(target)
        return measure_perplexity(
            spec, dataset, max_length=max_length, progress=progress_for(json_output)
        ).to_dict()

    def render(doc: dict[str, Any]) -> None:
        stdout_console().print(
            f"perplexity of {doc['target']} on {doc['dataset']} ({doc['kind']}, {doc['rows']} rows, "
            f"{doc['tokens']} scored tokens): [bold]{doc['perplexity']:.4f}[/]"
        )

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("list")
def list_(
    target: str | None = typer.Option(
        None, help="Only results of this target (registry reference or label)."
    ),
    suite: str | None = typer.Option(None, help="Only results of this suite name."),
    limit: int = typer.Option(20, min=1, help="How many, newest first."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Stored evaluation results, newest first."""
    from largeforge.evaluation import list_results

    def action() -> list[dict[str, Any]]:
        return [
            {k: v for k, v in record.to_dict().items() if k != "cases"}
            for record in list_results(target=target, suite=suite, limit=limit)
        ]

    def render(rows: list[dict[str, Any]]) -> None:
        table = Table(title="Evaluation results")
        for column in ("id", "created", "suite", "target", "pass rate", "cases"):
            table.add_column(column)
        for row in rows:
            summary = row["summary"]
            table.add_row(
                row["id"][:12],
                row["created_at"],
                row["suite"],
                row["target"],
                _fmt(summary["pass_rate"]),
                str(summary["cases"]),
            )
        stdout_console().print(table if rows else "no results yet: `largeforge eval run TARGET SUITE`")

    run_command(json_output, action, render=render, to_json=lambda rows: {"data": rows, "count": len(rows)})


@app.command("show")
def show(
    result_id: str = typer.Argument(..., help="Result id (from `eval list`)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """One stored result with its failing cases."""
    from largeforge.evaluation.service import get_result

    run_command(
        json_output, lambda: get_result(result_id).to_dict(), render=_render_record, to_json=lambda doc: doc
    )


@app.command("harness")
def harness(
    base_url: str = typer.Option(
        ..., help="The served model's OpenAI-compatible URL, e.g. http://host:8000/v1."
    ),
    model: str = typer.Option(..., help="The served model's name."),
    task: list[str] = typer.Option(
        ..., "--task", help="lm-evaluation-harness task (repeatable), e.g. gsm8k."
    ),
    chat: bool = typer.Option(False, help="Use chat completions with the chat template."),
    limit: int | None = typer.Option(None, min=1, help="Only the first N examples per task (smoke runs)."),
    output_dir: str = typer.Option("lm-eval-results", help="Where lm_eval writes its files."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Standard benchmarks via lm-evaluation-harness (must be installed) against a served model."""
    from pathlib import Path

    from largeforge.evaluation import run_lm_eval

    def action() -> dict[str, Any]:
        return run_lm_eval(base_url, model, task, Path(output_dir), chat=chat, limit=limit)

    def render(results: dict[str, Any]) -> None:
        table = Table(title=f"lm-evaluation-harness on {model}")
        for column in ("task", "metric", "value"):
            table.add_column(column)
        for name, metrics in results.items():
            for metric, value in metrics.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    table.add_row(name, metric, _fmt(float(value)))
        stdout_console().print(table)

    run_command(json_output, action, render=render, to_json=lambda results: results)
