"""Checks that run before the first step: options, data against the method, the chat template, memory.

Everything here is cheap next to a training step and catches what would otherwise fail minutes (or
hours, on a GPU queue) into a run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.training.spine import DevicePlan

_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass
class PreflightReport:
    device: str
    dtype: str
    total_parameters: int
    trainable_parameters: int
    memory_estimate_mib: float
    memory_available_mib: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.total_parameters == 0:
            return f"pre-flight: custom script on {self.device}; it loads its own model (no memory estimate)"
        return (
            f"pre-flight: {self.total_parameters:,} parameters ({self.trainable_parameters:,} trained) on "
            f"{self.device} in {self.dtype}; memory estimate ~{self.memory_estimate_mib:,.0f} MiB of "
            f"{self.memory_available_mib:,.0f} MiB available"
        )


def check_options(recipe: Any, data_kind: str, method_problems: list[str]) -> None:
    """Refuse incompatible options, all at once."""
    problems = list(method_problems)
    if recipe.tracking.tensorboard and importlib.util.find_spec("tensorboard") is None:
        problems.append("tracking.tensorboard needs the tensorboard package: pip install tensorboard")
    if problems:
        raise InvalidInput("the recipe cannot run as written:\n" + "\n".join(f"  {p}" for p in problems))


def check_template(tokenizer: Any, data_kind: str, first_row: dict[str, Any], assistant_only: bool) -> None:
    """Render the first row through the chat template the trainer will use."""
    from jinja2 import TemplateError

    from largeforge.data.preview import has_generation_markers, preview_rows

    try:
        preview = preview_rows([first_row], data_kind, tokenizer, limit=1)
    except (TemplateError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the chat template cannot render the first training row: {exc}") from exc
    if assistant_only and not has_generation_markers(tokenizer):
        raise InvalidInput(
            "assistant-only loss needs {% generation %} markers in the chat template; add them, or set "
            "assistant_only_loss: false"
        )
    if data_kind == "conversation" and assistant_only and preview.rows[0].trained_count == 0:
        raise InvalidInput(
            "the first row has no trained tokens under assistant-only loss; check the template"
        )


def estimate_memory(model: Any, recipe: Any, plan: DevicePlan) -> PreflightReport:
    """A rough upper bound: weights + gradients and AdamW state of trained weights + activations."""
    import psutil
    import torch

    total = sum(p.numel() for p in model.parameters())
    config = model.config
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if recipe.lora is not None:
        per_layer = 7 * recipe.lora.r * 2 * hidden  # all-linear: ~7 projections, A and B each r x hidden
        trainable = per_layer * layers
    else:
        trainable = total
    weight_bytes = _BYTES[plan.dtype_name] * total
    optimizer_bytes = (4 + 8) * trainable  # fp32 gradient + two AdamW moments
    tokens = recipe.training.batch_size * recipe.training.max_length
    activation_bytes = (
        tokens * (layers * hidden * 34 + vocab * 4) * (2 if plan.dtype_name != "float32" else 4) // 2
    )
    estimate = (weight_bytes + optimizer_bytes + activation_bytes) / 2**20
    if plan.device == "cuda":
        available = torch.cuda.get_device_properties(0).total_memory / 2**20
    else:
        available = psutil.virtual_memory().available / 2**20
    report = PreflightReport(
        plan.device, plan.dtype_name, total, trainable, round(estimate, 1), round(available, 1)
    )
    if estimate > available:
        report.warnings.append(
            f"the estimate ({estimate:,.0f} MiB) exceeds free memory ({available:,.0f} MiB): lower "
            "training.batch_size or training.max_length, or use lora"
        )
    return report


__all__ = ["PreflightReport", "check_options", "check_template", "estimate_memory"]
