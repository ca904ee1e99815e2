"""The process that runs one job: ``python -m largeforge.platform.jobs.runner <job dir>``.

It reads ``<job dir>/job.json`` (``{"job_id", "kind", "spec"}``, written by the worker), calls the
libraries — the same functions the CLI calls — and reports on stdout, one JSON object per line:

    {"event": "start" | "progress" | "finish", ...}   largeforge.progress.JsonLinesProgress
    {"event": "metric", "step": 12, "loss": ...}      each record of the run's metrics.jsonl
    {"event": "log", "message": ...}                  what the runner is doing (resuming, a stage)
    {"event": "registered", "ref": "name:3"}          a registry version this job created
    {"event": "result", "result": {...}}              the job's outcome (last line on success)
    {"event": "error", "message", "code", "retryable"}

Everything else a library prints goes to stderr, the job's log file. The run directory of a train
or pipeline job is ``<job dir>/run`` on every attempt, so an attempt after a crash resumes it from its
newest complete checkpoint. The database is never touched here except through the libraries (the
registry, the dataset store); job state belongs to the worker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from largeforge.errors import Conflict, Forbidden, InvalidInput, LargeForgeError, NotFound
from largeforge.progress import JsonLinesProgress

JOB_FILE = "job.json"
RUN_DIR = "run"
# Errors that the same job would hit again: no point retrying them.
PERMANENT_ERRORS = (InvalidInput, NotFound, Conflict, Forbidden)


class EventStream:
    """Whole lines to the event channel, one writer at a time (progress and the metrics tail share it)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def flush(self) -> None:
        return None

    def emit(self, event: str, **fields: Any) -> None:
        self.write(json.dumps({"event": event, **fields}, default=str) + "\n")


class GateFailed(InvalidInput):
    """The pipeline's evaluation did not reach the gate's minimums (the job fails without retries)."""


@dataclass
class JobContext:
    job_id: str
    job_dir: Path
    spec: dict[str, Any]
    events: EventStream

    @property
    def progress(self) -> JsonLinesProgress:
        return JsonLinesProgress(self.events)  # type: ignore[arg-type]  # a writer with write/flush

    def log(self, message: str) -> None:
        self.events.emit("log", message=message)


class MetricsTail:
    """Streams the run's ``metrics.jsonl`` as metric events while training writes it.

    A resumed run first truncates the file to its checkpoint's step, then logs those steps again with
    the same values; the tail follows the truncation, and the worker skips records it already stored.
    """

    def __init__(self, path: Path, events: EventStream, interval: float = 0.5) -> None:
        self.path, self.events, self.interval = path, events, interval
        self._sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-tail", daemon=True)

    def __enter__(self) -> MetricsTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        lines = text.splitlines(keepends=True)
        complete = [line for line in lines if line.endswith("\n") and line.strip()]
        self._sent = min(self._sent, len(complete))  # truncated by a resume: a prefix of what was sent
        for line in complete[self._sent :]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.events.emit("metric", **record)
        self._sent = len(complete)


# -- kinds -------------------------------------------------------------------------------------------


def run_train(ctx: JobContext) -> dict[str, Any]:
    return train_step(ctx, ctx.spec["recipe"])


def train_step(ctx: JobContext, recipe_document: dict[str, Any]) -> dict[str, Any]:
    """Train in ``<job dir>/run``: a new run, the resumption of an interrupted one, or (when it had
    already finished) its stored result; registers the final model when the recipe says so."""
    from largeforge.training import resume_training, run_training, validate_recipe
    from largeforge.training.resume import find_resume_checkpoint
    from largeforge.training.run_dir import RunDirectory

    run = RunDirectory(ctx.job_dir / RUN_DIR)
    recipe = validate_recipe(recipe_document)
    with MetricsTail(run.metrics_file, ctx.events):
        if run.result_file.exists():
            ctx.log(f"the run in {run.root} already finished; using its result")
            result = json.loads(run.result_file.read_text(encoding="utf-8"))
        elif run.recipe_file.exists():
            checkpoint = find_resume_checkpoint(run.root)
            ctx.log(f"resuming {run.root} from {checkpoint.name if checkpoint else 'step 0'}")
            result = resume_training(run.root, progress=ctx.progress).to_dict()
        else:
            shutil.rmtree(run.root, ignore_errors=True)  # killed before the run wrote its recipe
            recipe = recipe.model_copy(update={"model": _local_model(recipe.model)})
            result = run_training(recipe, output_dir=run.root, progress=ctx.progress).to_dict()
    if recipe.register_as is not None:
        result["registered"] = _register_run(ctx, run.root, recipe.register_as.name, recipe.register_as.tags)
    return result


def _local_model(reference: str) -> str:
    """A registry reference materialised to a directory; a path or hub id as is."""
    if Path(reference).expanduser().exists() or "/" in reference:
        return reference
    from largeforge.registry.runs import resolve_recipe_model
    from largeforge.registry.service import open_registry
    from largeforge.settings import get_settings

    with open_registry() as registry:
        path, _ = resolve_recipe_model(registry, reference, get_settings().models_dir / "registry")
    return path


def _register_run(ctx: JobContext, run_dir: Path, name: str, tags: dict[str, str]) -> str:
    from largeforge.registry.runs import find_by_content, register_run
    from largeforge.registry.service import open_registry
    from largeforge.training.run_dir import RunDirectory

    model = Path(str(RunDirectory(run_dir).read_recipe()["model"]))
    with open_registry() as registry:
        parent = find_by_content(registry, model) if model.exists() else None
        version = register_run(
            registry,
            run_dir,
            name,
            parent.ref if parent is not None else None,
            {**tags, "job": ctx.job_id},
            reuse_identical=True,  # a resumed pipeline registers the same files once
        )
        ref = version.ref
    ctx.events.emit("registered", ref=ref)
    return ref


def _suite(ctx: JobContext) -> Any:
    """The job's suite with its ``cases_from`` dataset (qualified to a version id at submit) read in."""
    from largeforge.evaluation import validate_suite
    from largeforge.evaluation.cases import resolve_cases

    return resolve_cases(validate_suite(ctx.spec["suite"]), base_dir=ctx.job_dir)


def run_evaluate(ctx: JobContext) -> dict[str, Any]:
    from largeforge.evaluation import TargetSpec, evaluate

    suite = _suite(ctx)
    record = evaluate(TargetSpec(ctx.spec["model"]), suite, reuse=True, progress=ctx.progress)
    return {
        "evaluation": record.id,
        "suite": record.suite,
        "target": record.target,
        "version": record.version,
        "summary": record.summary,
        "reused": record.reused,
    }


def run_export(ctx: JobContext) -> dict[str, Any]:
    from largeforge.registry.runs import register_export
    from largeforge.registry.service import open_registry

    spec = ctx.spec
    source = Path(_local_model(spec["model"]))
    out = ctx.job_dir / "export"
    progress = ctx.progress
    if spec["format"] == "merged":
        from largeforge.export.merge import merge_adapter

        output = out / "merged"
        done: Any = merge_adapter(source, output, overwrite=True, progress=progress)
        relation = "merged-from"
    elif spec["format"] == "quantized":
        from largeforge.export.quantize import quantize_model

        output = out / "quantized"
        done = quantize_model(source, output, method=spec["method"], overwrite=True, progress=progress)
        relation = "quantized-from"
    else:
        from largeforge.export.gguf import write_gguf

        output = out / "model.gguf"
        done = write_gguf(source, output, type=spec["type"], overwrite=True, progress=progress)
        relation = "converted-from"
    parity = getattr(done, "parity", None)
    metrics = {"parity/max_abs_logit_diff": parity.max_abs_logit_diff} if parity is not None else {}
    with open_registry() as registry:
        version = register_export(
            registry,
            output,
            source=source,
            kind=spec["format"],
            relation=relation,
            name=spec["name"],
            metrics=metrics,
            reuse_identical=True,
        )
        ref = version.ref if version is not None else None
    if ref is not None:
        ctx.events.emit("registered", ref=ref)
    return {"export": done.to_dict(), "registered": ref}


def run_pipeline(ctx: JobContext) -> dict[str, Any]:
    """train → evaluate → gate → register (+ alias); the deploy step is the worker's, after this."""
    spec = ctx.spec
    ctx.log("stage: train")
    train = train_step(ctx, spec["recipe"])
    ref = str(train["registered"])
    name, _, version = ref.rpartition(":")
    result: dict[str, Any] = {"train": train, "registered": ref, "gate_passed": None}
    alias = spec["register"].get("alias")
    if spec.get("suite") is not None:
        ctx.log("stage: evaluate")
        result.update(_evaluate_and_gate(ctx, name, version, alias))
    elif alias:
        from largeforge.registry.service import open_registry

        with open_registry() as registry:
            registry.set_alias(name, alias, ref, reason=f"pipeline job {ctx.job_id}")
        result["alias_moved"] = True
    if result["gate_passed"] is False:
        raise GateFailed(
            f"the gate failed, so nothing was promoted or deployed: {result['gate']['describe']}"
        )
    return result


def _evaluate_and_gate(ctx: JobContext, name: str, version: str, alias: str | None) -> dict[str, Any]:
    from largeforge.evaluation import TargetSpec, evaluate, gate, set_alias_if_gate_passes

    suite = _suite(ctx)
    minimums = ctx.spec.get("gate")
    if not minimums:
        record = evaluate(TargetSpec(f"{name}:{version}"), suite, reuse=True, progress=ctx.progress)
        out: dict[str, Any] = {"evaluation": record.summary}
        if alias:
            from largeforge.registry.service import open_registry

            with open_registry() as registry:
                registry.set_alias(name, alias, f"{name}:{version}", reason=f"pipeline job {ctx.job_id}")
            out["alias_moved"] = True
        return out
    ctx.log("stage: gate")
    if alias:
        promotion = set_alias_if_gate_passes(name, alias, version, suite, minimums, progress=ctx.progress)
        checked, moved = promotion.gate, promotion.moved
    else:
        checked = gate(TargetSpec(f"{name}:{version}"), suite, minimums, progress=ctx.progress)
        moved = False
    described = {**checked.to_dict(), "describe": checked.describe()}
    return {"gate": described, "gate_passed": checked.passed, "alias_moved": moved}


KINDS: dict[str, Callable[[JobContext], dict[str, Any]]] = {
    "train": run_train,
    "evaluate": run_evaluate,
    "export": run_export,
    "pipeline": run_pipeline,
}


# -- the process -------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Block on stdin (a pipe the worker never writes); EOF means the worker is gone: stop at once,
    with every child, so that the worker that claims the job next is the only one running it."""

    def watch() -> None:
        # The raw descriptor, not sys.stdin: a daemon thread blocked in a buffered reader's lock
        # aborts the interpreter's shutdown.
        while os.read(0, 4096):
            pass
        os.killpg(os.getpgrp(), signal.SIGKILL)

    if not stat.S_ISFIFO(os.fstat(0).st_mode):
        return  # started by hand from a terminal: nobody to outlive
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m largeforge.platform.jobs.runner JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0]).resolve()
    # The event channel is the original stdout; anything a library prints goes to the log instead.
    events = EventStream(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)
    _die_with_parent()
    try:
        job = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
        ctx = JobContext(job_id=job["job_id"], job_dir=job_dir, spec=job["spec"], events=events)
        result = KINDS[job["kind"]](ctx)
    except LargeForgeError as exc:
        traceback.print_exc()
        events.emit(
            "error", code=exc.code, message=exc.message, retryable=not isinstance(exc, PERMANENT_ERRORS)
        )
        return 1
    except Exception as exc:  # noqa: BLE001 - the process boundary: report any crash as the job's error
        traceback.print_exc()
        events.emit("error", code="internal_error", message=f"{type(exc).__name__}: {exc}", retryable=True)
        return 1
    events.emit("result", result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
