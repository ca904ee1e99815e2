"""``largeforge quickstart --via-server``: the same loop, run by the control plane instead of in-process.

It starts ``largeforge server`` (API, embedded job worker, deployment supervisor) as a child process
on a free loopback port over the same LARGEFORGE_HOME, creates an admin and an API key with
``largeforge admin``, and from then on is only a client: it creates a project, uploads the generated
datasets, submits ONE pipeline job (train → evaluate → gate → register @production → deploy), follows
its progress live over server-sent events, queries the deployment through the metered gateway with
the ``openai`` client and reads the usage it was billed. The server stops when the run ends.

The base model is built here, as in the local quickstart (the server runs on this machine, so its
worker reads it from the same path); everything after that goes through the API.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from largeforge.errors import Conflict, JobFailed, Unavailable
from largeforge.progress import NullProgress, ProgressReporter, TaskHandle
from largeforge.quickstart import (
    PERSON_SCHEMA,
    QuickstartConfig,
    QuickstartContext,
    QuickstartResult,
    StageResult,
    parses_to,
    sft_recipe,
    stage_base_model,
    suite_document,
    write_task_files,
)

PROJECT = "quickstart"
ADMIN_EMAIL = "quickstart-admin@example.com"
MODEL_NAME = "quickstart-sft"
DEPLOYMENT_START_SECONDS = 300.0


def stage_server(ctx: QuickstartContext) -> StageResult:
    """An admin and an API key (``largeforge admin``), then the project the loop runs in."""
    from largeforge.clients import PlatformClient

    url = ctx.state["server_url"]
    key = _admin_key()
    client = PlatformClient(url, api_key=key, timeout=120)
    ctx.state["client"] = client
    try:
        project = client.projects.create(PROJECT, description="largeforge quickstart --via-server")
    except Conflict:
        project = client.projects.get(PROJECT)  # a re-run: same project, new versions and jobs
    ctx.state["project"] = project["name"]
    return StageResult(
        "server",
        f"largeforge server at {url} (log {ctx.config.workdir / 'server.log'}); admin {ADMIN_EMAIL}, "
        f"API key {key.split('_')[0]}_{key.split('_')[1][:8]}…, project {project['name']}",
        details={"url": url, "project": project["id"]},
    )


def _admin_key() -> str:
    """Create (or reuse) the quickstart's global admin and mint a fresh API key for it."""
    password = secrets.token_urlsafe(24)  # never used to log in: the key does everything
    created = _admin("create-user", ADMIN_EMAIL, "--admin", "--password-stdin", "--json", stdin=password)
    if created.returncode != 0 and '"conflict"' not in created.stdout:
        raise Unavailable(f"largeforge admin create-user failed: {created.stdout or created.stderr}")
    made = _admin("create-key", ADMIN_EMAIL, "--name", "quickstart", "--json")
    if made.returncode != 0:
        raise Unavailable(f"largeforge admin create-key failed: {made.stdout or made.stderr}")
    return str(json.loads(made.stdout)["key"])


def _admin(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "largeforge", "admin", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def stage_upload(ctx: QuickstartContext) -> StageResult:
    """Generate the task files and upload the train and held-out splits as project datasets."""
    train_file, eval_file, _ = write_task_files(ctx)
    client, project = ctx.state["client"], ctx.state["project"]
    train = client.datasets.upload(project, train_file, name="quickstart-train")
    held_out = client.datasets.upload(project, eval_file, name="quickstart-eval")
    return StageResult(
        "data (upload)",
        f"{train['row_count']} train rows → {train['name']}@{train['number']}; "
        f"{held_out['row_count']} held-out rows → {held_out['name']}@{held_out['number']}",
        details={"train": train, "eval": held_out},
    )


def stage_pipeline(ctx: QuickstartContext) -> StageResult:
    """One pipeline job: SFT → evaluate on the held-out suite → gate → register @production → deploy,
    followed live. A failed gate is an answer, not an error: nothing is promoted or deployed."""
    cfg = ctx.config
    client, project = ctx.state["client"], ctx.state["project"]
    spec = {
        "recipe": sft_recipe(cfg, str(ctx.state["base_model"]), "quickstart-train"),
        "suite": suite_document(cfg, "quickstart-eval"),
        "gate": {"pass_rate": cfg.gate_pass_rate},
        "register": {"name": MODEL_NAME, "alias": "production"},
        "deploy": {"replicas": 1},
    }
    job = client.jobs.submit(project, "pipeline", spec, name="quickstart", max_attempts=1)
    follow_progress(client.jobs.events(project, job["id"]), ctx.progress)
    job = client.jobs.get(project, job["id"])
    if job["state"] != "succeeded" and "gate failed" not in (job.get("error") or ""):
        raise JobFailed(f"pipeline job {job['id']} {job['state']}: {job.get('error')}")
    result = job.get("result") or {}
    ctx.state["deployment"] = result.get("deployment")
    if job["state"] != "succeeded":
        summary = f"job {job['id']}: {job['error']}"
    else:
        train, gate = result.get("train", {}), result.get("gate", {})
        model = client.models.get(project, MODEL_NAME)  # the project's view of what the job registered
        newest = model["versions"][-1]["ref"]
        aliases = ", ".join(f"@{alias} → {number}" for alias, number in model["aliases"].items())
        summary = (
            f"job {job['id']}: {train.get('steps')} SFT steps, loss {train.get('final_loss') or 0:.3f} → "
            f"{newest} ({aliases}); gate {gate.get('describe', 'passed')}; "
            f"deployment {result.get('deployment')}"
        )
    return StageResult("pipeline", summary, details=job)


def stage_query(ctx: QuickstartContext) -> StageResult:
    """Held-out sentences through the deployment's metered gateway (the official ``openai`` client, a
    LargeForge API key), answers forced to the JSON schema; then the usage the gateway recorded."""
    from concurrent.futures import ThreadPoolExecutor

    import openai

    from largeforge.data.tasks import INSTRUCTION

    client, project, deployment_id = ctx.state["client"], ctx.state["project"], ctx.state.get("deployment")
    if not deployment_id:
        return StageResult("serve + query", "skipped: the gate failed, so nothing was deployed")
    deployment = _wait_running(client, project, deployment_id)
    cases = ctx.state["held_out"][:16]
    gateway = client.openai_client(project, deployment_id, max_retries=0, timeout=120)

    def ask(case: dict[str, Any]) -> str:
        answer = gateway.chat.completions.create(
            model=deployment["served_model_name"],
            messages=[
                {"role": "system", "content": INSTRUCTION},
                {"role": "user", "content": case["sentence"]},
            ],
            max_tokens=48,
            temperature=0,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON_SCHEMA},
            },
        )
        return str(answer.choices[0].message.content or "")

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=len(cases) or 1) as pool:
            texts = list(pool.map(ask, cases))
    except openai.APIError as exc:
        raise JobFailed(f"the gateway of deployment {deployment_id} answered: {exc}") from exc
    finally:
        gateway.close()
    seconds = time.perf_counter() - started
    client.deployments.stop(project, deployment_id)  # the quickstart leaves nothing running
    usage = client.usage.get(project)["totals"]
    exact = sum(parses_to(text, case["fields"]) for text, case in zip(texts, cases, strict=True))
    return StageResult(
        "serve + query",
        f"{deployment['version']} via the gateway: {exact}/{len(cases)} exact JSON on held-out sentences "
        f"({len(cases)} concurrent requests in {seconds:.1f} s); metered {usage['requests']} requests, "
        f"{usage['total_tokens']} tokens; e.g. {texts[0] if texts else ''}",
        details={"answers": texts, "exact": exact, "usage": usage, "deployment": deployment_id},
    )


def _wait_running(client: Any, project: str, deployment_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEPLOYMENT_START_SECONDS
    while True:
        deployment: dict[str, Any] = client.deployments.get(project, deployment_id)
        if deployment["status"] == "running":
            return deployment
        if deployment["status"] == "failed" or time.monotonic() > deadline:
            errors = [r["last_error"] for r in deployment.get("instances", []) if r.get("last_error")]
            raise Unavailable(
                f"deployment {deployment_id} is {deployment['status']}: {'; '.join(errors) or 'no error recorded'}"
            )
        time.sleep(0.5)


def follow_progress(events: Iterator[Any], progress: ProgressReporter) -> None:
    """Replay a job's ``progress`` events on a local reporter: the same bars (or JSON lines) the local
    quickstart shows, fed by the server-sent events of the worker's run.

    Tasks are shown one after another, as the runner reports them; a task still open when the next
    one starts (or when the stream ends) is closed first.
    """
    open_task: tuple[str, AbstractContextManager[TaskHandle], TaskHandle, int] | None = None

    def close() -> None:
        nonlocal open_task
        if open_task is not None:
            open_task[1].__exit__(None, None, None)
            open_task = None

    def start(name: str, total: Any) -> None:
        nonlocal open_task
        close()
        manager = progress.task(name, total=total if isinstance(total, int) else None)
        open_task = (name, manager, manager.__enter__(), 0)

    try:
        for event in events:
            record = event.data if event.event == "progress" and isinstance(event.data, dict) else None
            if record is None:
                continue
            name, kind = str(record.get("task") or "job"), record.get("event")
            if kind == "start" or open_task is None or open_task[0] != name:
                start(name, record.get("total"))
            if kind == "progress" and open_task is not None:
                completed = int(record.get("completed") or 0)
                metrics = {k: v for k, v in record.items() if k not in _BOOKKEEPING}
                open_task[2].advance(completed - open_task[3], **metrics)
                open_task = (open_task[0], open_task[1], open_task[2], completed)
            elif kind == "finish":
                close()
    finally:
        close()


_BOOKKEEPING = frozenset({"event", "task", "completed", "total", "time", "stage"})

Stage = Callable[[QuickstartContext], StageResult]
SERVER_STAGES: list[Stage] = [stage_server, stage_upload, stage_base_model, stage_pipeline, stage_query]


@contextmanager
def running_server(workdir: Path) -> Iterator[str]:
    """``largeforge server`` on a free loopback port until the block ends (SIGTERM: a graceful stop)."""
    from largeforge.routing.demo import child_server

    command = [sys.executable, "-m", "largeforge", "server", "--port"]
    with child_server(command, "/ready", workdir / "server.log") as url:
        yield url


def run_quickstart_via_server(
    config: QuickstartConfig, *, progress: ProgressReporter | None = None
) -> QuickstartResult:
    """Run :data:`SERVER_STAGES` against a server started for the run; the summary has the same shape
    as the local quickstart's.

    Raises:
        Unavailable: the server, the admin commands or the deployment did not come up.
        JobFailed: the pipeline job failed for another reason than its gate.
    """
    from largeforge.settings import get_settings

    ctx = QuickstartContext(config=config, progress=progress or NullProgress())
    config.workdir.mkdir(parents=True, exist_ok=True)
    # jobs load base models by path only from the allowed roots (default <home>/base-models)
    ctx.state["base_model_dir"] = get_settings().allowed_model_roots()[0] / "quickstart"
    results = []
    with running_server(config.workdir) as url:
        ctx.state["server_url"] = url
        try:
            for stage in SERVER_STAGES:
                started = time.perf_counter()
                result = stage(ctx)
                result.seconds = round(time.perf_counter() - started, 2)
                results.append(result)
        finally:
            if "client" in ctx.state:
                ctx.state["client"].close()
    return QuickstartResult(workdir=str(config.workdir), stages=results)


__all__ = ["SERVER_STAGES", "follow_progress", "run_quickstart_via_server"]
