"""Shared fixtures: an isolated LargeForge home per test and one tiny model per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from largeforge.settings import get_settings

# Shrinks the ``tiny`` preset to ~60 k parameters: builds in about a second, still a real Qwen2.
NANO_OVERRIDES = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 256,
}
NANO_CORPUS = [
    "Maria Lopez, 34, lives in Lisbon.",
    '{"name": "Maria Lopez", "age": 34, "city": "Lisbon"}',
    "hello world, the cat sat on the mat",
    "What is two plus two? It is four.",
] * 20


@pytest.fixture(autouse=True)
def largeforge_home(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test gets its own home directory; nothing leaks between tests. Jobs may load models by path
    from anywhere under the test run's temporary directory (where ``tiny_model_dir`` lives)."""
    home = tmp_path / "lf-home"
    monkeypatch.setenv("LARGEFORGE_HOME", str(home))
    monkeypatch.setenv("LARGEFORGE_JOB_MODEL_ROOTS", str(tmp_path_factory.getbasetemp()))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 with a byte-level BPE tokenizer and the ChatML template, built offline."""
    from largeforge.scratch import build_base_model

    path = tmp_path_factory.mktemp("nano") / "model"
    build_base_model(path, preset="tiny", corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port; its URL without a database name.

    Skipped where the server binaries are missing, unless LARGEFORGE_REQUIRE_SERVERS=1 (CI), where a
    missing server fails the run instead of hiding a skipped suite.
    """
    import os
    import shutil
    import subprocess
    import tempfile

    bindir = _postgres_bin()
    if bindir is None:
        if os.environ.get("LARGEFORGE_REQUIRE_SERVERS") == "1":
            pytest.fail("PostgreSQL server binaries are missing but LARGEFORGE_REQUIRE_SERVERS=1")
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql); CI runs these tests")
    base = Path(tempfile.mkdtemp(prefix="lf-pg-"))
    base.chmod(0o777)  # the postgres user must reach its data and socket directories
    # initdb refuses to run as root: run the server tools as the postgres user.
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data, port = base / "data", _free_port()
    subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-o",
            options,
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (no persistence).

    Skipped where redis-server is missing, unless LARGEFORGE_REQUIRE_SERVERS=1 (CI), where that fails.
    """
    import os
    import shutil
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("LARGEFORGE_REQUIRE_SERVERS") == "1":
            pytest.fail("redis-server is missing but LARGEFORGE_REQUIRE_SERVERS=1")
        pytest.skip("Redis is not installed here (apt-get install redis-server); CI runs these tests")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    client.close()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, empty database per test — SQLite always, PostgreSQL where a server can be started."""
    import uuid

    from largeforge.db import dispose_engines

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'largeforge.db'}"
    else:
        import psycopg

        server = request.getfixturevalue("postgres_server")
        name = f"lf_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            server.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = f"{server}/{name}"
    monkeypatch.setenv("LARGEFORGE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    dispose_engines()


SHARP_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "largeforge.json")


def make_sharp_copy(source: Path, target: Path, seed: int = 0) -> Path:
    """A copy of a tiny model with weights ~ N(0, 0.2) (norms ~ N(1, 0.1)).

    Random init leaves logits near zero, so greedy output is one repeated token and comparisons pass by
    accident; sharp weights spread the logits so decoding and numeric checks mean something.
    """
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            mean, std = (1.0, 0.1) if "norm" in name else (0.0, 0.2 if parameter.ndim == 2 else 0.1)
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std + mean)
    model.save_pretrained(target)
    for name in SHARP_FILES:
        shutil.copy(source / name, target / name)
    return target


@pytest.fixture(scope="session")
def llama_cpp() -> Any:
    """llama-cpp-python (the [llamacpp] extra): skipped without it, a failure where CI requires it."""
    try:
        import llama_cpp
    except ImportError:
        if os.environ.get("LARGEFORGE_REQUIRE_SERVERS") == "1":
            pytest.fail("llama-cpp-python is missing but LARGEFORGE_REQUIRE_SERVERS=1")
        pytest.skip("llama-cpp-python is not installed: pip install 'largeforge[llamacpp]'")
    return llama_cpp
