"""Wire types of the jobs API, and the spec of each job kind.

A job's ``spec`` arrives as a JSON object and is validated against the model of its ``kind``
(:data:`SPEC_MODELS`); the recipe and suite inside are then validated by the training and evaluation
libraries themselves, so the API accepts exactly what ``largeforge train`` and ``largeforge eval`` do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobKind = Literal["train", "evaluate", "export", "pipeline"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
EventType = Literal["progress", "state", "log", "metric"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainJobSpec(_Spec):
    recipe: dict[str, Any] = Field(
        description="A training recipe: the recipe YAML as JSON (`largeforge train schema` prints its "
        "schema). Datasets are this project's dataset names or version ids."
    )


class EvaluateJobSpec(_Spec):
    suite: dict[str, Any] = Field(description="An evaluation suite document (the suite YAML as JSON).")
    model: str = Field(
        min_length=1, max_length=300, description="This project's model: NAME, NAME:VERSION or NAME@ALIAS."
    )


class ExportJobSpec(_Spec):
    format: Literal["merged", "quantized", "gguf"] = Field(
        description="merged: fold a LoRA adapter into its base; quantized: int8 and friends; gguf: one "
        "file for llama.cpp."
    )
    model: str = Field(
        min_length=1, max_length=300, description="This project's model to export (NAME[:VERSION|@ALIAS])."
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Model name to register the export under (default: <model>-<format>).",
    )
    type: Literal["f32", "f16", "q8_0"] = Field("f16", description="GGUF tensor type (format gguf).")
    method: Literal["int8", "bnb8", "bnb4", "awq", "gptq"] = Field(
        "int8", description="Quantization method (format quantized); all but int8 need CUDA."
    )


class RegisterStep(_Spec):
    name: str = Field(min_length=1, max_length=100, description="Model name to register the result under.")
    alias: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Alias to point at the new version (only when the gate passes, if there is one).",
    )


class DeployStep(_Spec):
    replicas: int = Field(1, ge=1, le=16, description="Serving replicas of the new version.")
    engine: str = Field("hf", min_length=1, max_length=32, description="Serving engine (hf, llamacpp, vllm).")


class PipelineJobSpec(_Spec):
    recipe: dict[str, Any] = Field(description="The training recipe of the first step.")
    suite: dict[str, Any] | None = Field(None, description="Evaluation suite run on the trained model.")
    gate: dict[str, float] | None = Field(
        None,
        description='Minimum metrics the evaluation must reach, e.g. {"pass_rate": 0.8}; needs a suite.',
    )
    # "register" as the wire name: a field called so would shadow ABCMeta.register on the class.
    register_step: RegisterStep = Field(
        alias="register", description="Where the trained model is registered."
    )
    deploy: DeployStep | None = Field(None, description="Deploy the new version when everything passed.")


SPEC_MODELS: dict[str, type[_Spec]] = {
    "train": TrainJobSpec,
    "evaluate": EvaluateJobSpec,
    "export": ExportJobSpec,
    "pipeline": PipelineJobSpec,
}


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: JobKind = Field(description="What the job does; decides the shape of spec.")
    spec: dict[str, Any] = Field(
        description="train: {recipe}; evaluate: {suite, model}; export: {format, model, ...}; "
        "pipeline: {recipe, suite?, gate?, register {name, alias?}, deploy {replicas}?}."
    )
    name: str | None = Field(
        None, max_length=200, pattern=r"^[^\x00]*$", description="A label for people; not unique."
    )
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first among queued jobs.")
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts before the job counts as failed.")


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    project_id: str
    name: str | None
    kind: str
    spec: dict[str, Any]
    state: JobState
    priority: int
    attempts: int
    max_attempts: int
    not_before: datetime | None = Field(description="A failed attempt's backoff: not claimed before this.")
    lease_owner: str | None = Field(description="The worker running the job.")
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    worker_info: dict[str, Any] | None = Field(description="Host and devices of the worker that ran it.")
    result: dict[str, Any] | None
    error: str | None
    run_dir: str | None
    created_by: str | None
    api_key_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobList(BaseModel):
    data: list[JobOut]
    count: int = Field(description="Jobs matching the filters, over all pages.")


class JobEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    time: datetime
    type: EventType
    data: dict[str, Any]


__all__ = [
    "SPEC_MODELS",
    "DeployStep",
    "EvaluateJobSpec",
    "EventType",
    "ExportJobSpec",
    "JobCreate",
    "JobEventOut",
    "JobKind",
    "JobList",
    "JobOut",
    "JobState",
    "PipelineJobSpec",
    "RegisterStep",
    "TrainJobSpec",
]
