"""What every training method shares, written once: device and precision, model loading, PEFT,
the trainer arguments common to all methods, and the run itself (pre-flight, progress, checkpoints,
resume, final artifacts).

A method module (``methods/<name>.py``) only builds its TRL trainer from the pieces here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, Unavailable
from largeforge.training.specs import LoraSpec, RecipeBase


@dataclass(frozen=True)
class DevicePlan:
    """Where and in which precision a run trains; decided once, before anything loads."""

    device: str
    bf16: bool
    fp16: bool

    @property
    def dtype_name(self) -> str:
        return "bfloat16" if self.bf16 else "float16" if self.fp16 else "float32"


def plan_device(recipe: RecipeBase) -> DevicePlan:
    """Resolve ``auto`` device and precision; refuse combinations that cannot run here.

    CPU runs train in fp32 unless bf16 is asked for explicitly (no autocast by surprise).

    Raises:
        Unavailable: CUDA asked for (or needed by QLoRA) and absent.
        InvalidInput: fp16 on a CPU.
    """
    import torch

    cuda = torch.cuda.is_available()
    wanted = recipe.training.device
    if wanted == "cuda" and not cuda:
        raise Unavailable("training.device is cuda but no CUDA GPU is visible; use device: cpu or auto")
    if recipe.quantization is not None and not cuda:
        raise Unavailable(
            "quantization (QLoRA) needs a CUDA GPU and bitsandbytes; remove the quantization section to train "
            "a plain LoRA adapter on this machine"
        )
    device = "cuda" if (wanted == "cuda" or (wanted == "auto" and cuda)) else "cpu"
    precision = recipe.training.precision
    if precision == "fp16" and device == "cpu":
        raise InvalidInput("training.precision fp16 needs a CUDA GPU; use fp32 (or bf16) on a CPU")
    if precision == "auto":
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return DevicePlan(device=device, bf16=precision == "bf16", fp16=precision == "fp16")


def load_tokenizer_for_training(source: str) -> Any:
    from largeforge.model_source import load_tokenizer

    tokenizer = load_tokenizer(source)
    if tokenizer.pad_token is None:
        # Causal LMs often ship without a pad token; padding with EOS is the usual, harmless choice.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(source: str, recipe: RecipeBase, plan: DevicePlan) -> Any:
    """Load the base model in the planned dtype (quantized when the recipe asks for QLoRA).

    Raises:
        InvalidInput: transformers cannot load the directory. Unavailable: bitsandbytes is missing.
    """
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": getattr(torch, plan.dtype_name)}
    if recipe.quantization is not None:
        kwargs["quantization_config"] = _bitsandbytes_config(recipe, plan)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load model {source}: {exc}") from exc
    if recipe.training.gradient_checkpointing:
        model.config.use_cache = False
    return model


def _bitsandbytes_config(recipe: RecipeBase, plan: DevicePlan) -> Any:
    import importlib.util

    import torch
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise Unavailable("QLoRA needs bitsandbytes: pip install bitsandbytes (CUDA machines only)")
    quant = recipe.quantization
    assert quant is not None  # the caller checked
    if quant.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant.quant_type,
        bnb_4bit_use_double_quant=quant.double_quant,
        bnb_4bit_compute_dtype=getattr(
            torch, plan.dtype_name if plan.dtype_name != "float32" else "bfloat16"
        ),
    )


def peft_config(lora: LoraSpec | None) -> Any:
    """The PEFT ``LoraConfig`` for a recipe's lora section (None: full fine-tuning)."""
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def common_args(recipe: RecipeBase, output_dir: Path, plan: DevicePlan, *, has_eval: bool) -> dict[str, Any]:
    """Trainer arguments every method shares, in TRL/transformers names (the method adds its own)."""
    training, checkpoints = recipe.training, recipe.checkpoints
    report_to = ["tensorboard"] if recipe.tracking.tensorboard else []
    return {
        "output_dir": str(output_dir),
        "max_steps": training.max_steps,
        "per_device_train_batch_size": training.batch_size,
        "per_device_eval_batch_size": training.batch_size,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "learning_rate": training.learning_rate,
        "lr_scheduler_type": training.lr_scheduler,
        "warmup_steps": int(training.warmup_ratio * training.max_steps),
        "weight_decay": training.weight_decay,
        "max_grad_norm": training.max_grad_norm,
        "logging_steps": training.logging_steps,
        "save_strategy": "steps",
        "save_steps": checkpoints.save_steps,
        "save_total_limit": checkpoints.keep_last,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": (training.eval_steps or checkpoints.save_steps) if has_eval else None,
        "metric_for_best_model": "eval_loss" if has_eval else None,
        "bf16": plan.bf16,
        "fp16": plan.fp16,
        "use_cpu": plan.device == "cpu",
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "activation_checkpointing": training.gradient_checkpointing,
        "include_num_input_tokens_seen": True,
        "report_to": report_to,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "run_name": recipe.run_name,
        **_distributed_args(recipe),
    }


def _distributed_args(recipe: RecipeBase) -> dict[str, Any]:
    """DDP needs nothing; FSDP and DeepSpeed are trainer arguments (used when launched with --nproc)."""
    strategy = recipe.distributed.strategy
    if strategy == "fsdp":
        return {"fsdp": "full_shard auto_wrap"}
    if strategy == "deepspeed":
        return {"deepspeed": recipe.distributed.deepspeed_config}
    return {}


@dataclass
class MethodContext:
    """What a method's ``build_trainer`` gets: the loaded pieces and the shared callbacks."""

    recipe: Any
    model_source: str
    tokenizer: Any
    plan: DevicePlan
    data_kind: str
    train_dataset: Any
    eval_dataset: Any | None
    output_dir: Path
    callbacks: list[Any] = field(default_factory=list)

    def args(self) -> dict[str, Any]:
        return common_args(self.recipe, self.output_dir, self.plan, has_eval=self.eval_dataset is not None)

    def load_model(self) -> Any:
        return load_model(self.model_source, self.recipe, self.plan)

    def peft_config(self) -> Any:
        return peft_config(self.recipe.lora)

    def trainer_kwargs(self) -> dict[str, Any]:
        """The arguments every TRL trainer takes alike; a method adds ``args`` and its own extras."""
        return {
            "model": self.load_model(),
            "train_dataset": self.train_dataset,
            "eval_dataset": self.eval_dataset,
            "processing_class": self.tokenizer,
            "peft_config": self.peft_config(),
            "callbacks": self.callbacks,
        }


@dataclass
class TrainResult:
    run_dir: str
    method: str
    steps: int
    final_loss: float | None
    train_loss: float | None
    runtime_seconds: float
    final_dir: str
    resumed_from: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


__all__ = [
    "DevicePlan",
    "MethodContext",
    "TrainResult",
    "common_args",
    "load_model",
    "load_tokenizer_for_training",
    "peft_config",
    "plan_device",
]
