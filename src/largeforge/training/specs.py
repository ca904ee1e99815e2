"""The parts every recipe shares: data, model, hyper-parameters, LoRA, quantization, checkpoints, tracking.

Each method's recipe (``methods/<name>.py``) extends :class:`RecipeBase` with the fields that make the
method different. Field descriptions feed ``largeforge train schema``, the API and the UI's forms.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(Spec):
    train: str = Field(description="Training data: a dataset version id, NAME[@N], or a file path.")
    eval: str | None = Field(None, description="Optional evaluation data, same forms as train.")
    format: str | None = Field(None, description="Force a file's format instead of detecting it.")
    split: str | None = Field(None, description="Split of an HF DatasetDict folder.")
    eval_fraction: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="Hold out this fraction of train for evaluation when no eval data is given.",
    )


class TrainingSpec(Spec):
    max_steps: int = Field(100, gt=0, description="Optimizer steps to run.")
    batch_size: int = Field(8, gt=0, description="Per-device micro-batch size.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "cosine", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    max_length: int = Field(512, gt=0, description="Truncate samples to this many tokens.")
    logging_steps: int = Field(1, gt=0, description="Log metrics every N steps.")
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps (default: at each save).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on a GPU that supports it, fp32 on CPU (no autocast unless asked)."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory; off for small models.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train.")


class LoraSpec(Spec):
    r: int = Field(8, gt=0, description="LoRA rank.")
    alpha: int = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA path.")
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear", description='"all-linear" or a list of module names such as [q_proj, v_proj].'
    )


class QuantizationSpec(Spec):
    bits: Literal[4, 8] = Field(
        4, description="Load the base model in 4-bit (QLoRA) or 8-bit via bitsandbytes."
    )
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    double_quant: bool = Field(True, description="Quantize the quantization constants too.")


class CheckpointSpec(Spec):
    save_steps: int = Field(50, gt=0, description="Write a checkpoint every N steps.")
    keep_last: int = Field(2, gt=0, description="Checkpoints kept, besides the best one.")


class TrackingSpec(Spec):
    tensorboard: bool = Field(False, description="Write TensorBoard event files into the run directory.")
    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking server URL; metrics are sent over its REST API (no mlflow install).",
    )
    mlflow_experiment: str = Field("largeforge", description="MLflow experiment name.")


class DistributedSpec(Spec):
    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp", description="How several processes share the work under `largeforge train --nproc N`."
    )
    deepspeed_config: str | None = Field(None, description="DeepSpeed JSON config path (strategy deepspeed).")

    @model_validator(mode="after")
    def _deepspeed_needs_config(self) -> DistributedSpec:
        if self.strategy == "deepspeed" and not self.deepspeed_config:
            raise ValueError("strategy deepspeed needs distributed.deepspeed_config (a DeepSpeed JSON file)")
        return self


class RegisterSpec(Spec):
    name: str = Field(description="Registered model name the run's final model or adapter is filed under.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on the new version.")


class RecipeBase(Spec):
    """Fields every method has; subclasses add ``method`` and their own options."""

    model: str = Field(
        description="Base model: a local Hugging Face directory (or a hub id where reachable)."
    )
    data: DataSpec = Field(description="What to train on.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Optimisation settings.")
    lora: LoraSpec | None = Field(None, description="Train a LoRA adapter instead of all weights.")
    quantization: QuantizationSpec | None = Field(None, description="QLoRA: a quantized base (CUDA only).")
    checkpoints: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="Checkpoint cadence and retention."
    )
    tracking: TrackingSpec = Field(default_factory=TrackingSpec, description="Where else metrics go.")
    distributed: DistributedSpec = Field(
        default_factory=DistributedSpec, description="Multi-process settings."
    )
    seed: int = Field(0, description="Seeds model init, data order and sampling.")
    run_name: str | None = Field(None, description="Name of the run directory (default: method + time).")
    register_as: RegisterSpec | None = Field(
        None, description="Register the finished run's output in the model registry, with its lineage."
    )

    @model_validator(mode="after")
    def _quantization_needs_lora(self) -> RecipeBase:
        if self.quantization is not None and self.lora is None:
            raise ValueError("quantization (QLoRA) trains an adapter: add a lora section")
        return self


__all__ = [
    "CheckpointSpec",
    "DataSpec",
    "DistributedSpec",
    "LoraSpec",
    "QuantizationSpec",
    "RecipeBase",
    "RegisterSpec",
    "Spec",
    "TrackingSpec",
    "TrainingSpec",
]
