"""The ``vllm`` engine: a ``vllm serve`` child process behind our API, for GPU machines.

Owns the child's life (start, wait for /health, watch, stop) and the translation of our interface onto
its OpenAI-compatible HTTP API: a :class:`GenerationRequest` becomes a streamed ``/v1/completions``
call with the prompt as token ids, adapters are loaded through ``/v1/load_lora_adapter``, and
:meth:`VllmEngine.stats` reads its Prometheus ``/metrics``. Our routes, auth, metrics and tool-call
parsing stay in front; vLLM only makes tokens. It does not own tokenisation: the API tokenises with
the model directory's Hugging Face tokenizer, the same files vLLM loads.

Written against vLLM >= 0.12: ``structured_outputs`` (which replaced ``guided_grammar``, removed in
0.12), ``return_token_ids`` (0.10.2+) and ``vllm:kv_cache_usage_perc`` (older versions export
``vllm:gpu_cache_usage_perc``, which is read too). Grammars are sent as llguidance Lark text, so the
child runs with the ``guidance`` structured-output backend.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from largeforge.errors import Conflict, InvalidInput, LargeForgeError, NotFound, Overloaded, Unavailable
from largeforge.serving.engine import EngineStats, GenerationChunk, GenerationRequest, TokenLogprob

# vLLM accepts only these LoRA ranks for --max-lora-rank.
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
_RUNNING = ("vllm:num_requests_running",)
_WAITING = ("vllm:num_requests_waiting",)
_KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


class VllmEngine:
    """Runs ``vllm serve MODEL`` with LoRA enabled on a loopback port and proxies generation to it.

    Args:
        model: a Hugging Face model directory (or hub id) vLLM can load; its tokenizer is ours too.
        adapters: name → PEFT adapter directory, served from the start (``--lora-modules``).
        executable: the ``vllm`` command; default ``vllm`` on PATH.
        port: the child's port; default a free loopback port.
        startup_timeout: seconds to wait for the child's /health (loading a large model takes minutes).
        max_lora_rank: the largest adapter rank the child accepts, also for adapters loaded later;
            default the largest of ``adapters`` (at least 16, vLLM's default).
        max_loras: adapters one batch may mix (vLLM's ``--max-loras``).
        extra_args: more ``vllm serve`` arguments (``--gpu-memory-utilization 0.8`` …).
        metrics_interval: seconds between reads of the child's /metrics for :meth:`stats`.
        served_name: the base model's id (vLLM's ``--served-model-name``); default the directory name.

    Raises:
        InvalidInput: the executable is missing, or an adapter directory is not a PEFT adapter.
        Unavailable: the child exited or did not become healthy in ``startup_timeout``; the message
            carries the end of its log.
    """

    def __init__(
        self,
        model: str,
        adapters: dict[str, str] | None = None,
        *,
        executable: str = "vllm",
        port: int | None = None,
        startup_timeout: float = 900.0,
        max_lora_rank: int | None = None,
        max_loras: int = 4,
        extra_args: tuple[str, ...] = (),
        metrics_interval: float = 0.5,
        served_name: str | None = None,
    ) -> None:
        found = shutil.which(executable)
        if found is None:
            raise InvalidInput(
                f"the vllm engine runs `{executable} serve`, and {executable!r} is not on PATH: "
                "pip install vllm on a GPU machine, or pass executable=PATH"
            )
        self.base_id = served_name or (Path(model).name if Path(model).exists() else model)
        self.tokenizer = _load_tokenizer(model)  # first: a bad model path fails before a GPU is touched
        ranks = {name: _adapter_rank(name, path) for name, path in (adapters or {}).items()}
        self.adapters: list[str] = list(ranks)
        port = port or _free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        command = [found, "serve", model, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--served-model-name", self.base_id, "--enable-lora", "--max-loras", str(max_loras)]
        command += ["--max-lora-rank", str(_lora_rank_limit(max_lora_rank, ranks.values()))]
        command += ["--structured-outputs-config.backend", "guidance"]
        if adapters:
            command += ["--lora-modules", *(f"{name}={path}" for name, path in adapters.items())]
        command += list(extra_args)
        self._log = Path(tempfile.mkstemp(prefix="largeforge-vllm-", suffix=".log")[1])
        self._process = self._start(command)
        self._stats = EngineStats()
        self._stopping = threading.Event()
        try:
            self._wait_until_healthy(startup_timeout)
            self.context_length = self._read_context_length()
        except BaseException:
            self._terminate()
            raise
        self._poller = threading.Thread(
            target=self._poll_metrics, args=(metrics_interval,), name="vllm-metrics", daemon=True
        )
        self._poller.start()

    def _start(self, command: list[str]) -> subprocess.Popen[bytes]:
        # Runtime adapter loading is off in vLLM unless this is set in its environment.
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
        with self._log.open("wb") as log:
            # Its own session: stopping it signals the whole group (the API server and its engine core).
            return subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def _wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise Unavailable(
                    f"vllm exited with code {self._process.returncode} while starting; "
                    f"its log ({self._log}) ends with:\n{self._log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.25)
        raise Unavailable(
            f"vllm did not become healthy within {timeout:g} s (startup_timeout); "
            f"its log ({self._log}) ends with:\n{self._log_tail()}"
        )

    def _read_context_length(self) -> int:
        listed = httpx.get(f"{self.base_url}/v1/models", timeout=10).json()
        for entry in listed.get("data", []):
            if entry.get("id") == self.base_id and entry.get("max_model_len"):
                return int(entry["max_model_len"])
        raise Unavailable(f"vllm's /v1/models does not list {self.base_id!r} with a max_model_len: {listed}")

    def _log_tail(self, size: int = 3000) -> str:
        text = self._log.read_text(errors="replace") if self._log.exists() else ""
        return text[-size:]

    def model_ids(self) -> list[str]:
        return [self.base_id, *self.adapters]

    def stats(self) -> EngineStats:
        """The child's load as of its last /metrics read (at most ``metrics_interval`` old)."""
        return self._stats

    def _poll_metrics(self, interval: float) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stopping.wait(interval):
                try:
                    response = client.get(f"{self.base_url}/metrics")
                except httpx.HTTPError:
                    continue  # a dead child shows in check_health; stats keep their last value
                if response.status_code == 200:
                    self._stats = parse_metrics(response.text)

    async def check_health(self) -> None:
        if self._process.poll() is not None:
            raise Unavailable(
                f"vllm exited with code {self._process.returncode}; "
                f"its log ({self._log}) ends with:\n{self._log_tail(1000)}"
            )
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(f"{self.base_url}/health")
        except httpx.HTTPError as exc:
            raise Unavailable(f"vllm at {self.base_url} does not answer: {exc}") from exc
        if response.status_code != 200:
            raise Unavailable(f"vllm's /health answered {response.status_code}")

    async def aclose(self) -> None:
        self._stopping.set()
        self._terminate()

    def _terminate(self) -> None:
        if self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    async def load_adapter(self, name: str, path: str) -> None:
        if name == self.base_id or name in self.adapters:
            raise Conflict(f"adapter name {name!r} is already in use")
        _adapter_rank(name, path)
        await self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        self.adapters.append(name)

    async def unload_adapter(self, name: str) -> None:
        if name not in self.adapters:
            raise NotFound(f"adapter {name!r} is not loaded; loaded: {self.adapters}")
        await self._post("/v1/unload_lora_adapter", {"lora_name": name})
        self.adapters.remove(name)

    async def _post(self, route: str, body: dict[str, Any]) -> None:
        try:
            async with httpx.AsyncClient(timeout=300) as client:
                response = await client.post(f"{self.base_url}{route}", json=body)
        except httpx.HTTPError as exc:
            raise Unavailable(f"vllm at {self.base_url} does not answer: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response.status_code, response.text)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        if request.adapter is not None and request.adapter not in self.adapters:
            raise NotFound(f"adapter {request.adapter!r} is not loaded; loaded: {self.adapters}")
        body = completion_body(request, request.adapter or self.base_id)
        # One client per request: closing this generator closes the connection, and vLLM aborts a
        # request whose client went away, freeing its KV blocks.
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client:
            try:
                async with client.stream("POST", f"{self.base_url}/v1/completions", json=body) as response:
                    if response.status_code >= 400:
                        raise _error(response.status_code, (await response.aread()).decode(errors="replace"))
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[len("data:") :].strip()
                        if data == "[DONE]":
                            return
                        chunk = parse_stream_event(json.loads(data), request.logprobs)
                        if chunk is not None:
                            yield chunk
            except httpx.HTTPError as exc:
                raise Unavailable(f"the stream from vllm at {self.base_url} broke: {exc}") from exc


def completion_body(request: GenerationRequest, model: str) -> dict[str, Any]:
    """The ``/v1/completions`` body for ``request``: every field, under vLLM's names.

    ``top_k`` 0 (ours: off) is sent as -1, vLLM's "off" in every version.
    """
    body: dict[str, Any] = {
        "model": model,
        "prompt": list(request.prompt_ids),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k if request.top_k > 0 else -1,
        "min_p": request.min_p,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "stop": list(request.stop),
        "stream": True,
        "return_token_ids": True,
        # Generation config defaults (repetition_penalty …) of the model must not change our requests.
        "repetition_penalty": 1.0,
        "skip_special_tokens": True,
    }
    if request.ignore_eos:
        body["ignore_eos"] = True
    if request.seed is not None:
        body["seed"] = request.seed
    if request.logprobs is not None:
        body["logprobs"] = request.logprobs
    if request.grammar is not None:
        body["structured_outputs"] = {"grammar": request.grammar.lark}
    return body


def parse_stream_event(event: dict[str, Any], logprobs: int | None) -> GenerationChunk | None:
    """One SSE event of a streamed completion → a chunk (None for an event without a choice).

    Raises:
        LargeForgeError: vLLM reported an error inside the stream.
    """
    if "error" in event:
        error = event["error"]
        raise _error(int(error.get("code") or 500) if isinstance(error, dict) else 500, json.dumps(error))
    if not event.get("choices"):
        return None
    choice = event["choices"][0]
    finish = choice.get("finish_reason")
    chunk = GenerationChunk(
        text=choice.get("text") or "",
        token_ids=list(choice.get("token_ids") or []),
        # vLLM also reports "abort" (the request was cancelled): the stream ended, nothing was cut.
        finish_reason=None if finish is None else ("length" if finish == "length" else "stop"),
    )
    if logprobs is not None and choice.get("logprobs"):
        chunk.logprobs = _logprobs(choice["logprobs"], logprobs)
    return chunk


def _logprobs(block: dict[str, Any], top: int) -> list[TokenLogprob]:
    entries = []
    alternatives = block.get("top_logprobs") or [{}] * len(block["tokens"])
    for token, value, others in zip(block["tokens"], block["token_logprobs"], alternatives, strict=True):
        # vLLM's dict may add the sampled token to the top ones: keep the ``top`` most likely.
        ranked = sorted((others or {}).items(), key=lambda item: -item[1])[:top]
        entries.append(TokenLogprob(token, float(value), [(t, float(v)) for t, v in ranked]))
    return entries


def parse_metrics(text: str) -> EngineStats:
    """Running/waiting requests and KV-cache use from vLLM's Prometheus text, summed over label sets.

    A sample line is ``name{label="value",…} 1.0`` (label values may hold spaces) or ``name 1.0``.
    """
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if "}" in line:
            head, tail = line.rsplit("}", 1)
            name, fields = head.split("{", 1)[0], tail.split()
        else:
            name, *fields = line.split()
        try:
            values[name] = values.get(name, 0.0) + float(fields[0])
        except (ValueError, IndexError):
            continue  # not a sample we understand; the three we read are plain gauges

    def first(names: tuple[str, ...]) -> float:
        return next((values[n] for n in names if n in values), 0.0)

    return EngineStats(
        running=int(first(_RUNNING)), waiting=int(first(_WAITING)), kv_cache_usage=first(_KV_USAGE)
    )


def _error(status: int, body: str) -> LargeForgeError:
    """vLLM's error answer → our hierarchy (the API maps it back to an OpenAI status)."""
    try:
        parsed = json.loads(body)
        message = parsed.get("error", parsed)
        message = message.get("message", body) if isinstance(message, dict) else str(message)
    except (ValueError, AttributeError):
        message = body
    message = f"vllm: {message}"
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 429:
        return Overloaded(message)
    if status in (400, 422):
        # vLLM answers 400 when an adapter name is taken on load.
        return Conflict(message) if "already" in message else InvalidInput(message)
    return Unavailable(message)


def _adapter_rank(name: str, path: str) -> int:
    config_file = Path(path) / "adapter_config.json"
    if not config_file.exists():
        raise NotFound(f"adapter {name}: {path} holds no adapter_config.json")
    try:
        return int(json.loads(config_file.read_text()).get("r", 8))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"adapter {name}: {config_file} is not a PEFT adapter config: {exc}") from exc


def _lora_rank_limit(requested: int | None, ranks: Any) -> int:
    needed = max([requested or 16, *ranks])
    for rank in LORA_RANKS:
        if rank >= needed:
            return rank
    raise InvalidInput(f"LoRA rank {needed} is above vLLM's largest, {LORA_RANKS[-1]}")


def _load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    from largeforge.model_source import resolve_model_source

    source = resolve_model_source(model)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load the tokenizer of {source}: {exc}") from exc


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = ["VllmEngine", "completion_body", "parse_metrics", "parse_stream_event"]
