"""Optional metric reporting to an MLflow tracking server, over its REST API.

We talk HTTP instead of importing ``mlflow``: installing mlflow into the main environment downgrades
pinned packages (pyarrow), and a tracking server is all a run needs. The run directory's
``metrics.jsonl`` stays the source of truth; a server that goes away mid-run costs a warning, not the run.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from largeforge.errors import Unavailable

log = logging.getLogger(__name__)
API = "/api/2.0/mlflow"


class MlflowClient:
    """The four MLflow REST calls a training run needs."""

    def __init__(self, uri: str, *, http: httpx.Client | None = None) -> None:
        self._http = http or httpx.Client(base_url=uri.rstrip("/"), timeout=10.0)
        self.uri = uri

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(f"{API}/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else {}

    def experiment_id(self, name: str) -> str:
        response = self._http.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})
        if response.status_code == 200:
            return str(response.json()["experiment"]["experiment_id"])
        return str(self._post("experiments/create", {"name": name})["experiment_id"])

    def create_run(self, experiment_id: str, run_name: str, params: dict[str, str]) -> str:
        run = self._post(
            "runs/create",
            {"experiment_id": experiment_id, "run_name": run_name, "start_time": int(time.time() * 1000)},
        )["run"]
        run_id = str(run["info"]["run_id"])
        batch = [{"key": k[:250], "value": v[:6000]} for k, v in params.items()]
        for start in range(0, len(batch), 100):  # MLflow accepts at most 100 params per call
            self._post("runs/log-batch", {"run_id": run_id, "params": batch[start : start + 100]})
        return run_id

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        entries = [{"key": k, "value": float(v), "timestamp": now, "step": step} for k, v in metrics.items()]
        self._post("runs/log-batch", {"run_id": run_id, "metrics": entries})

    def finish_run(self, run_id: str, status: str) -> None:
        self._post("runs/update", {"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)})


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"training": {"max_steps": 3}}`` → ``{"training.max_steps": "3"}`` (MLflow params are strings)."""
    flat: dict[str, str] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


class MlflowCallback(TrainerCallback):
    """Creates an MLflow run at the start, sends every logged metric, closes the run at the end."""

    def __init__(self, client: MlflowClient, experiment: str, run_name: str, params: dict[str, Any]) -> None:
        self._client, self._experiment, self._run_name = client, experiment, run_name
        self._params = flatten(params)
        self.run_id: str | None = None

    def start(self) -> None:
        """Called in the pre-flight: an unreachable server fails the run before any step."""
        try:
            experiment_id = self._client.experiment_id(self._experiment)
            self.run_id = self._client.create_run(experiment_id, self._run_name, self._params)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach the MLflow server at {self._client.uri}: {exc}") from exc

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.run_id is None or not logs or not state.is_world_process_zero:
            return
        metrics = {k: v for k, v in logs.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        try:
            self._client.log_metrics(self.run_id, state.global_step, metrics)
        except httpx.HTTPError as exc:
            log.warning(
                "MLflow logging failed at step %s (metrics.jsonl still has them): %s", state.global_step, exc
            )

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.run_id is None:
            return
        try:
            self._client.finish_run(self.run_id, "FINISHED")
        except httpx.HTTPError as exc:
            log.warning("could not close the MLflow run %s: %s", self.run_id, exc)


__all__ = ["MlflowCallback", "MlflowClient", "flatten"]
