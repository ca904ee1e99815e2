"""Wire shapes of the deployments API: what to serve, and how its replicas are doing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SERVED_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MODEL_REF = r"^[^:@\s]+(:[0-9]{1,9}|@[^:@\s]+)?$"  # NAME, NAME:VERSION or NAME@ALIAS
Engine = Literal["hf", "llamacpp"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
DesiredState = Literal["running", "stopped"]
# pending: no supervisor has picked it up yet; starting: replicas are loading; running: all answer
# /health; degraded: some do; stopping/stopped: on its way down / down; failed: none could start.
DeploymentStatus = Literal["pending", "starting", "running", "degraded", "failed", "stopping", "stopped"]
ReplicaStatus = Literal["pending", "starting", "running", "unhealthy", "crashed", "stopped"]


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1,
        max_length=200,
        pattern=MODEL_REF,
        description="A model of this project: NAME (newest version), NAME:VERSION or NAME@ALIAS. The "
        "reference is resolved once: restarts keep serving that version even when the alias moves.",
    )
    adapters: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="LoRA adapters to serve next to the base: {served name: model reference of this project}.",
    )
    replicas: int = Field(1, ge=1, le=8, description="Serving processes behind the gateway.")
    engine: Engine = Field("hf", description="hf (transformers) or llamacpp (a GGUF model version).")
    served_model_name: str | None = Field(
        None,
        pattern=SERVED_NAME,
        description="The `model` clients send for the base model; default: the model's name.",
    )
    max_num_seqs: int | None = Field(
        None, ge=1, le=1024, description="hf engine: sequences decoded together per replica."
    )
    max_model_len: int | None = Field(
        None, ge=16, le=1_048_576, description="hf engine: context length per sequence."
    )
    dtype: DType = Field("auto", description="hf engine: weights' dtype (bfloat16 is faster on CPU).")

    @model_validator(mode="after")
    def _names(self) -> DeploymentCreate:
        import re

        problems = [
            f"adapters: {name!r} is not a usable served name (letters, digits, '.', '_', '-')"
            for name in self.adapters
            if not re.match(SERVED_NAME, name)
        ]
        if self.served_model_name is not None and self.served_model_name in self.adapters:
            problems.append(f"adapters: {self.served_model_name!r} is also the served_model_name")
        if self.engine == "llamacpp" and (self.max_num_seqs or self.max_model_len or self.dtype != "auto"):
            problems.append("max_num_seqs, max_model_len and dtype apply to the hf engine only")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ReplicaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int = Field(description="0-based replica number.")
    status: ReplicaStatus = Field(description="What the supervisor last saw.")
    healthy: bool = Field(description="True when the replica answered its last /health check.")
    endpoint: str | None = Field(description="http://127.0.0.1:PORT of the replica (internal).")
    pid: int | None = Field(description="Process id of the replica.")
    restarts: int = Field(description="How often the supervisor restarted it after a crash.")
    last_error: str | None = Field(description="Why it last crashed or failed to start.")
    started_at: datetime | None


class DeploymentRead(BaseModel):
    id: str
    project_id: str
    model: str = Field(description="The reference the deployment was created with.")
    version: str = Field(description="The version it serves (NAME:VERSION).")
    served_model_name: str = Field(description="The `model` clients send for the base model.")
    adapters: dict[str, str] = Field(description="{served name: NAME:VERSION} of the adapters.")
    models: list[str] = Field(description="Every `model` the deployment answers to.")
    engine: Engine
    replicas: int = Field(description="How many replicas should run.")
    desired_state: DesiredState
    status: DeploymentStatus
    endpoint: str = Field(
        description="Base URL path of the metered OpenAI-compatible gateway (give it to the openai client "
        "as base_url, with a LargeForge API key)."
    )
    instances: list[ReplicaRead] = Field(description="The replicas as the supervisor last saw them.")
    options: dict[str, int | str] = Field(description="Engine options (max_num_seqs, max_model_len, dtype).")
    created_at: datetime
    updated_at: datetime


class DeploymentList(BaseModel):
    data: list[DeploymentRead]
    count: int


class RouterConfigRead(BaseModel):
    config: dict[str, object] = Field(
        description="An experts config for `largeforge router --config` (save it as YAML): one expert per "
        "served model of each running deployment, its replicas as upstreams."
    )
    environment: dict[str, str] | None = Field(
        description="The variables the config's api_key_env fields name, with the replicas' internal keys; "
        "export them where the router runs. Null for viewers (developers and up see the keys)."
    )


__all__ = [
    "DeploymentCreate",
    "DeploymentList",
    "DeploymentRead",
    "DeploymentStatus",
    "ReplicaRead",
    "ReplicaStatus",
    "RouterConfigRead",
]
