"""The router's own endpoints on a real process: /route, /experts, /metrics, feedback, reload, auth."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from tests.routing.conftest import Process, expert, fast_config

CHAT = [{"role": "user", "content": "please multiply these"}]


def test_route_experts_metrics_and_model_resolution(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    math_up, general_up = fake_upstream("math-up"), fake_upstream("general-up")
    router = router_process(
        fast_config(
            expert("math", math_up, model="tiny-math", keywords=["multiply"]), expert("general", general_up)
        )
    )
    decision = httpx.post(f"{router.url}/route", json={"messages": CHAT}).json()
    assert decision["expert"] == "math" and decision["decision"] == "auto"
    assert set(decision["scores"]) == {"math", "general"} and decision["scores"]["math"] > 0.5
    assert "multiply" in decision["reason"]
    # An upstream model id is a pass-through to the expert that serves it.
    passthrough = httpx.post(
        f"{router.v1}/chat/completions",
        json={"model": "tiny-math", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert (
        passthrough.headers["x-largeforge-expert"] == "math"
        and passthrough.headers["x-largeforge-decision"] == "model"
    )
    assert passthrough.json()["choices"][0]["message"]["content"] == "answer from math-up"
    unknown = httpx.post(f"{router.v1}/chat/completions", json={"model": "gpt-9", "messages": CHAT})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert "auto, math, general, tiny-math" in unknown.json()["error"]["message"]
    completion = httpx.post(f"{router.v1}/completions", json={"model": "auto", "prompt": "hello there"})
    assert (
        completion.headers["x-largeforge-expert"] == "general"
        and completion.headers["x-largeforge-decision"] == "abstained"
    )
    assert completion.json()["choices"][0]["text"] == "answer from general-up"
    ids = [m["id"] for m in httpx.get(f"{router.v1}/models").json()["data"]]
    assert ids == ["auto", "math", "general", "tiny-math", "m"]
    metrics = httpx.get(f"{router.url}/metrics").text
    assert 'largeforge_router_requests_total{expert="math",outcome="ok"} 1' in metrics
    assert 'largeforge_router_decisions_total{expert="general",decision="abstained"} 1' in metrics
    assert 'largeforge_router_latency_seconds_count{expert="general"} 1' in metrics


def test_experts_report_live_replica_health(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process]
) -> None:
    one, two = fake_upstream("one"), fake_upstream("two")
    router = router_process(fast_config(expert("general", one, two)))
    two.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        replicas = httpx.get(f"{router.url}/experts").json()["experts"][0]["replicas"]
        if not replicas[1]["healthy"]:
            break
        time.sleep(0.2)
    assert [r["healthy"] for r in replicas] == [True, False]
    assert "health check" in replicas[1]["last_error"]
    assert httpx.get(f"{router.url}/health").json()["status"] == "ok"
    one.kill()
    time.sleep(1.5)
    health = httpx.get(f"{router.url}/health")
    assert health.status_code == 503 and health.json()["without_healthy_replica"] == ["general"]


def test_feedback_is_logged_next_to_the_decision(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process], largeforge_home: Path
) -> None:
    router = router_process(
        fast_config(
            expert("math", fake_upstream("a"), keywords=["multiply"]), expert("general", fake_upstream("b"))
        )
    )
    answer = httpx.post(f"{router.v1}/chat/completions", json={"model": "auto", "messages": CHAT})
    response_id = answer.json()["id"]
    ok = httpx.post(
        f"{router.v1}/feedback", json={"response_id": response_id, "expert": "general", "rating": -1}
    )
    assert ok.json() == {"recorded": True, "response_id": response_id}
    bad = httpx.post(f"{router.v1}/feedback", json={"response_id": response_id, "expert": "nobody"})
    assert bad.status_code == 400 and "nobody" in bad.json()["error"]["message"]
    records = [
        json.loads(line) for line in (largeforge_home / "router" / "decisions.jsonl").read_text().splitlines()
    ]
    decision, feedback = records
    assert decision["event"] == "decision" and decision["response_id"] == response_id
    assert (
        decision["expert"] == "math"
        and decision["prompt"] == CHAT[0]["content"]
        and decision["outcome"] == "ok"
    )
    assert decision["request_id"] == answer.headers["x-largeforge-request-id"]
    assert decision["prompt_tokens"] == 5 and decision["latency_ms"] > 0 and decision["scores"]["math"] > 0
    assert feedback == {
        **feedback,
        "event": "feedback",
        "response_id": response_id,
        "expert": "general",
        "rating": -1,
    }


def test_reload_by_http_and_by_sighup_and_a_bad_file_changes_nothing(
    fake_upstream: Callable[..., Process], router_process: Callable[..., Process], tmp_path: Path
) -> None:
    up = fake_upstream("up")
    router = router_process(fast_config(expert("general", up)), "--api-key", "secret")
    auth = {"authorization": "Bearer secret"}
    assert httpx.get(f"{router.url}/experts").status_code == 401
    assert httpx.get(f"{router.url}/health").status_code == 200  # open for load balancers
    config_file = tmp_path / "experts.yaml"
    config_file.write_text(
        yaml.safe_dump(fast_config(expert("writing", up, keywords=["poem"]), expert("general", up)))
    )
    reloaded = httpx.post(f"{router.url}/admin/reload", headers=auth).json()
    assert reloaded == {"reloaded": True, "experts": ["writing", "general"], "classifier": "keyword"}
    config_file.write_text("default: general\nexperts: []\n")
    bad = httpx.post(f"{router.url}/admin/reload", headers=auth)
    assert bad.status_code == 400 and "experts" in bad.json()["error"]["message"]
    names = [e["name"] for e in httpx.get(f"{router.url}/experts", headers=auth).json()["experts"]]
    assert names == ["writing", "general"]
    config_file.write_text(
        yaml.safe_dump(fast_config(expert("code", up, keywords=["python"]), expert("general", up)))
    )
    router.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = [e["name"] for e in httpx.get(f"{router.url}/experts", headers=auth).json()["experts"]]
        if names[0] == "code":
            break
        time.sleep(0.1)
    assert names == ["code", "general"]
    routed = httpx.post(
        f"{router.v1}/chat/completions",
        headers=auth,
        json={"model": "auto", "messages": [{"role": "user", "content": "python help"}]},
    )
    assert routed.headers["x-largeforge-expert"] == "code"
