"""Standard benchmarks (GSM8K, HellaSwag, MMLU …) through EleutherAI's lm-evaluation-harness.

We do not re-implement benchmarks: their prompts, few-shot sets and scoring rules are what make
numbers comparable with published ones. Instead, serve the model (our server, vLLM, any
OpenAI-compatible server) and point ``lm_eval`` at it::

    pip install "lm-eval[api]"
    lm_eval --model local-completions --tasks gsm8k \\
        --model_args model=tiny,base_url=http://127.0.0.1:8000/v1/completions,num_concurrent=1,tokenized_requests=False

:func:`run_lm_eval` runs exactly that command (``local-chat-completions`` plus ``--apply_chat_template``
with ``chat=True``) and returns the harness's ``results`` section. Generative tasks (gsm8k) work
against any endpoint; log-likelihood tasks (hellaswag, mmlu) need a server that returns prompt
log-probabilities (``echo`` + ``logprobs``, as vLLM does) and a ``tokenizer`` the harness can load.
When ``lm_eval`` is not installed the call raises ``Unavailable`` with the install line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, JobFailed, Unavailable


def lm_eval_command(
    executable: str,
    base_url: str,
    model: str,
    tasks: Sequence[str],
    output_dir: Path,
    *,
    chat: bool = False,
    limit: int | None = None,
    num_fewshot: int | None = None,
    tokenizer: str | None = None,
) -> list[str]:
    """The ``lm_eval`` argument list for an OpenAI-compatible server at ``base_url`` (``…/v1``)."""
    endpoint = f"{base_url.rstrip('/')}/{'chat/completions' if chat else 'completions'}"
    model_args = [f"model={model}", f"base_url={endpoint}", "num_concurrent=1", "max_retries=3"]
    model_args += (
        [f"tokenizer={tokenizer}", "tokenizer_backend=huggingface"]
        if tokenizer
        else ["tokenized_requests=False"]
    )
    command = [
        executable,
        "--model",
        "local-chat-completions" if chat else "local-completions",
        "--model_args",
        ",".join(model_args),
        "--tasks",
        ",".join(tasks),
        "--output_path",
        str(output_dir),
    ]
    if chat:
        command.append("--apply_chat_template")
    if limit is not None:
        command += ["--limit", str(limit)]
    if num_fewshot is not None:
        command += ["--num_fewshot", str(num_fewshot)]
    return command


def run_lm_eval(
    base_url: str,
    model: str,
    tasks: Sequence[str],
    output_dir: Path,
    *,
    chat: bool = False,
    limit: int | None = None,
    num_fewshot: int | None = None,
    tokenizer: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run lm-evaluation-harness against a served model; return ``{task: {metric: value}}``.

    Raises:
        Unavailable: ``lm_eval`` is not installed. InvalidInput: no task given.
        JobFailed: the harness exited with an error (its last output lines are in the message) or
            wrote no results file.
    """
    if not tasks:
        raise InvalidInput("give at least one task, e.g. --task gsm8k (`lm_eval --tasks list` lists them)")
    executable = shutil.which("lm_eval") or shutil.which("lm-eval")
    if executable is None:
        raise Unavailable(
            "lm-evaluation-harness is not installed: pip install 'lm-eval[api]' "
            "(then serve the model and rerun; see largeforge/evaluation/harness.py)"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    command = lm_eval_command(
        executable,
        base_url,
        model,
        tasks,
        output_dir,
        chat=chat,
        limit=limit,
        num_fewshot=num_fewshot,
        tokenizer=tokenizer,
    )
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise JobFailed(f"lm_eval did not finish within {timeout} s") from exc
    if finished.returncode != 0:
        tail = "\n".join((finished.stderr or finished.stdout).strip().splitlines()[-15:])
        raise JobFailed(f"lm_eval exited with code {finished.returncode}:\n{tail}")
    found = sorted(output_dir.rglob("results*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise JobFailed(f"lm_eval finished but wrote no results*.json under {output_dir}")
    results: dict[str, Any] = json.loads(found[-1].read_text()).get("results", {})
    return results


__all__ = ["lm_eval_command", "run_lm_eval"]
