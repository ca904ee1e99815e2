"""MLflow reporting over REST, against a fake tracking server (a real one would need mlflow's pins)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from transformers import TrainerControl, TrainerState

from largeforge.errors import Unavailable
from largeforge.training import run_training
from largeforge.training.tracking import MlflowCallback, MlflowClient, flatten


class FakeMlflow:
    """Just enough of the MLflow REST API, recording what it was sent."""

    def __init__(self) -> None:
        self.experiments: dict[str, str] = {}
        self.runs: dict[str, dict[str, Any]] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/2.0/mlflow/")
        if path == "experiments/get-by-name":
            name = request.url.params["experiment_name"]
            if name not in self.experiments:
                return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})
            return httpx.Response(200, json={"experiment": {"experiment_id": self.experiments[name]}})
        body = json.loads(request.content)
        if path == "experiments/create":
            self.experiments[body["name"]] = str(len(self.experiments) + 1)
            return httpx.Response(200, json={"experiment_id": self.experiments[body["name"]]})
        if path == "runs/create":
            run_id = f"run{len(self.runs)}"
            self.runs[run_id] = {"name": body["run_name"], "params": {}, "metrics": [], "status": "RUNNING"}
            return httpx.Response(200, json={"run": {"info": {"run_id": run_id}}})
        run = self.runs[body["run_id"]]
        if path == "runs/log-batch":
            run["params"].update({p["key"]: p["value"] for p in body.get("params", [])})
            run["metrics"].extend(body.get("metrics", []))
        elif path == "runs/update":
            run["status"] = body["status"]
        return httpx.Response(200, json={})


def test_callback_creates_run_logs_params_metrics_and_finishes() -> None:
    server = FakeMlflow()
    client = MlflowClient(
        "http://mlflow.test",
        http=httpx.Client(base_url="http://mlflow.test", transport=httpx.MockTransport(server.handler)),
    )
    callback = MlflowCallback(client, "exp", "sft-run", {"method": "sft", "training": {"max_steps": 3}})
    callback.start()
    state = TrainerState()
    for step, loss in ((1, 2.0), (2, 1.5)):
        state.global_step = step
        callback.on_log(None, state, TrainerControl(), logs={"loss": loss, "note": "text"})  # type: ignore[arg-type]
    callback.on_train_end(None, state, TrainerControl())  # type: ignore[arg-type]
    run = server.runs["run0"]
    assert server.experiments == {"exp": "1"} and run["name"] == "sft-run"
    assert run["params"] == {"method": "sft", "training.max_steps": "3"}
    assert [(m["key"], m["step"], m["value"]) for m in run["metrics"]] == [("loss", 1, 2.0), ("loss", 2, 1.5)]
    assert run["status"] == "FINISHED"


def test_flatten_nested_recipe() -> None:
    assert flatten({"a": {"b": {"c": 1}}, "d": None}) == {"a.b.c": "1", "d": "None"}


def test_unreachable_server_fails_before_training(make_recipe: Any, tmp_path: Path) -> None:
    recipe = make_recipe("sft", tracking={"mlflow_uri": "http://127.0.0.1:9"})
    with pytest.raises(Unavailable, match="MLflow server"):
        run_training(recipe, output_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_real_run_reports_every_logged_step(
    make_recipe: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeMlflow()
    real_client = MlflowClient.__init__

    def fake_server(self: MlflowClient, uri: str, *, http: httpx.Client | None = None) -> None:
        transport = httpx.MockTransport(server.handler)
        real_client(self, uri, http=httpx.Client(base_url=uri, transport=transport))

    monkeypatch.setattr(MlflowClient, "__init__", fake_server)
    recipe = make_recipe("sft", lora={"r": 4}, tracking={"mlflow_uri": "http://mlflow.test"})
    run_training(recipe, output_dir=tmp_path / "run")
    run = server.runs["run0"]
    assert [m["step"] for m in run["metrics"] if m["key"] == "loss"] == [1, 2, 3]
    assert run["status"] == "FINISHED" and run["params"]["method"] == "sft"
