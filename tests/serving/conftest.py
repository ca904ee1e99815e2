"""A real server process on a free loopback port, driven with the official ``openai`` client."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port, make_sharp_copy


@dataclass
class Server:
    base_url: str
    model_dir: Path
    adapters: dict[str, Path]
    process: subprocess.Popen[bytes]


def make_adapter(model_dir: Path, target: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) B matrices: it changes the model without training."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=32, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"
    )
    get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), config).save_pretrained(target)
    return target


def start_server(model_dir: Path, adapters: dict[str, Path], *extra: str) -> Server:
    port = _free_port()
    command = [sys.executable, "-m", "largeforge", "serve", str(model_dir), "--port", str(port), *extra]
    for name, path in adapters.items():
        command += ["--adapter", f"{name}={path}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return Server(f"{base}/v1", model_dir, adapters, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not become healthy in 120 s")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
    if server.process.stderr:
        server.process.stderr.close()


@pytest.fixture(scope="session")
def sharp_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sharp_copy(tiny_model_dir, tmp_path_factory.mktemp("serve-sharp") / "model")


@pytest.fixture(scope="session")
def adapters(sharp_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-adapters")
    return {
        "alpha": make_adapter(sharp_model, root / "alpha", 1),
        "beta": make_adapter(sharp_model, root / "beta", 2),
    }


@pytest.fixture(scope="session")
def server(sharp_model: Path, adapters: dict[str, Path]) -> Iterator[Server]:
    running = start_server(sharp_model, adapters)
    yield running
    stop_server(running)
