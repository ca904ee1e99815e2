"""Expert-router benchmark: routing accuracy per classifier, and the latency the router adds.

(1) Accuracy of the keyword, embedding, hybrid and learned classifiers on the held-out split of
``bench/data/router_prompts.jsonl`` (502 prompts, 4 domains; held-out prompts come from templates
never seen in training). Keywords and descriptions come from ``examples/router/experts.yaml``; the
embedding/hybrid examples and the learned classifier's training data are the train split.
(2) Router-added latency: the same chat requests sent straight to a minimal fast upstream
(``examples/router/fake_upstream.py``) and through ``largeforge router`` in front of it, at 1 and 64
concurrent clients; added = routed percentile − direct percentile, measured in the same run.

    python bench/router.py                 # both parts
    python bench/router.py --skip-latency  # accuracy only
Targets: hybrid ≥ 90 %, learned ≥ hybrid; keyword p50 ≤ 3 ms and p99 ≤ 15 ms, hybrid p50 ≤ 15 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "bench" / "data" / "router_prompts.jsonl"
EXPERTS = ROOT / "examples" / "router" / "experts.yaml"
FAKE_UPSTREAM = ROOT / "examples" / "router" / "fake_upstream.py"


def load_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    rows = [json.loads(line) for line in PROMPTS.read_text().splitlines()]
    return [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "test"]


def bench_config(classifier: str, upstream: str | None = None) -> dict[str, Any]:
    """The example experts, their examples replaced by the train split, optionally all on one upstream."""
    document = yaml.safe_load(EXPERTS.read_text())
    train, _ = load_rows()
    document["classifier"]["type"] = classifier
    for expert in document["experts"]:
        expert["examples"] = [r["prompt"] for r in train if r["expert"] == expert["name"]]
        expert.pop("cache", None)
        if upstream:
            expert["upstreams"] = [{"url": upstream, "model": expert["name"]}]
    return document


def accuracy() -> dict[str, float]:
    from largeforge.routing.classifiers import build_classifier
    from largeforge.routing.classifiers.learned import LearnedClassifier, fit_artifact
    from largeforge.routing.config import parse_router_config
    from largeforge.routing.embeddings import load_embedder
    from largeforge.routing.learning import LabelledPrompt, accuracy_of

    train, test = load_rows()
    embedder = load_embedder()
    test_prompts = [LabelledPrompt(r["prompt"], r["expert"], "file") for r in test]
    test_vectors = embedder.encode([p.text for p in test_prompts])
    results: dict[str, float] = {}
    for kind in ("keyword", "embedding", "hybrid"):
        config = parse_router_config(bench_config(kind))
        results[kind] = accuracy_of(build_classifier(config), test_prompts, test_vectors)
    config = parse_router_config(bench_config("hybrid"))
    artifact = fit_artifact(embedder.encode([r["prompt"] for r in train]), [r["expert"] for r in train])
    learned = LearnedClassifier(
        artifact,
        [e.name for e in config.experts],
        threshold=config.classifier.threshold,
        abstain_to=config.default,
    )
    results["learned"] = accuracy_of(learned, test_prompts, test_vectors)
    print(f"\n(1) routing accuracy on {len(test)} held-out prompts ({len(train)} train), 4 domains")
    for kind, value in results.items():
        print(f"    {kind:<10} {value * 100:5.1f} %")
    print(
        f"    targets: hybrid ≥ 90 % → {'met' if results['hybrid'] >= 0.9 else 'MISSED'}; "
        f"learned ≥ hybrid → {'met' if results['learned'] >= results['hybrid'] else 'MISSED'}"
    )
    return results


def _start(command: list[str], probe: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode()[-2000:] if process.stderr else "exited")
        try:
            httpx.get(probe, timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{probe} did not come up")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _measure(url: str, model: str, prompts: list[str], concurrency: int, per_client: int) -> np.ndarray:
    """Per-request latencies (seconds) of ``concurrency`` clients each sending ``per_client`` requests."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker(offset: int) -> None:
            for i in range(per_client):
                # A unique prompt per request: no embedding cache can hide the classifier's cost.
                prompt = f"{prompts[(offset * per_client + i) % len(prompts)]} (#{offset}-{i})"
                body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8}
                started = time.perf_counter()
                response = await client.post(f"{url}/chat/completions", json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(worker(0) for _ in range(2)))  # warm connections and caches
        latencies.clear()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return np.array(latencies)


def latency(requests_single: int, requests_each_64: int) -> dict[str, Any]:
    _, test = load_rows()
    prompts = [r["prompt"] for r in test]
    port = _free_port()
    upstream = _start(
        [sys.executable, str(FAKE_UPSTREAM), "--port", str(port), "--name", "fast"],
        f"http://127.0.0.1:{port}/v1/models",
    )
    direct_url = f"http://127.0.0.1:{port}/v1"
    results: dict[str, Any] = {}
    processes = [upstream]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for classifier in ("keyword", "hybrid"):
                config = Path(tmp) / f"{classifier}.yaml"
                document = bench_config(classifier, direct_url)
                document["decisions"] = {"path": str(Path(tmp) / f"{classifier}-decisions.jsonl")}
                config.write_text(yaml.safe_dump(document))
                router_port = _free_port()
                env = {**os.environ, "LARGEFORGE_HOME": tmp, "HF_HUB_OFFLINE": "1"}
                router = _start(
                    [
                        sys.executable,
                        "-m",
                        "largeforge",
                        "router",
                        "--config",
                        str(config),
                        "--port",
                        str(router_port),
                    ],
                    f"http://127.0.0.1:{router_port}/health",
                    env,
                )
                processes.append(router)
                routed_url = f"http://127.0.0.1:{router_port}/v1"
                for concurrency, each in ((1, requests_single), (64, requests_each_64)):
                    direct = asyncio.run(_measure(direct_url, "fast", prompts, concurrency, each))
                    routed = asyncio.run(_measure(routed_url, "auto", prompts, concurrency, each))
                    row = {
                        "direct_p50_ms": float(np.percentile(direct, 50) * 1000),
                        "direct_p99_ms": float(np.percentile(direct, 99) * 1000),
                        "routed_p50_ms": float(np.percentile(routed, 50) * 1000),
                        "routed_p99_ms": float(np.percentile(routed, 99) * 1000),
                        "requests": len(routed),
                    }
                    row["added_p50_ms"] = row["routed_p50_ms"] - row["direct_p50_ms"]
                    row["added_p99_ms"] = row["routed_p99_ms"] - row["direct_p99_ms"]
                    row["ratio_p50"] = row["routed_p50_ms"] / row["direct_p50_ms"]
                    results[f"{classifier}@{concurrency}"] = row
                router.terminate()
                router.wait(timeout=20)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
    print("\n(2) router-added latency vs calling the upstream directly (ms; same run, same prompts)")
    print(
        "    classifier@clients  requests  direct p50/p99   routed p50/p99   added p50/p99   routed/direct p50"
    )
    for name, row in results.items():
        print(
            f"    {name:<18} {row['requests']:>8}  {row['direct_p50_ms']:6.2f}/{row['direct_p99_ms']:7.2f}  "
            f"{row['routed_p50_ms']:6.2f}/{row['routed_p99_ms']:7.2f}  {row['added_p50_ms']:6.2f}/{row['added_p99_ms']:7.2f}"
            f"   {row['ratio_p50']:.2f}x"
        )
    keyword, hybrid = results["keyword@1"], results["hybrid@1"]
    print(
        f"    targets (1 client): keyword added p50 ≤ 3 ms → {keyword['added_p50_ms']:.2f}; "
        f"p99 ≤ 15 ms → {keyword['added_p99_ms']:.2f}; hybrid added p50 ≤ 15 ms → {hybrid['added_p50_ms']:.2f}"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="Expert-router accuracy and added latency.")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--requests", type=int, default=400, help="requests at 1 client")
    parser.add_argument("--requests-each", type=int, default=10, help="requests per client at 64 clients")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    if not args.skip_accuracy:
        figures["accuracy"] = accuracy()
    if not args.skip_latency:
        figures["latency"] = latency(args.requests, args.requests_each)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
