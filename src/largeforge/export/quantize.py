"""Quantize a model directory, and measure what it cost with the parity check.

Owns the choice of method (one registry, ``QUANTIZERS``) and the CPU path, ``int8``, whose format is
documented in ``export/int8.py``. The GPU methods need CUDA and their libraries: ``bnb8``/``bnb4``
load with bitsandbytes and save (a CUDA machine only); ``awq``/``gptq`` need calibration tooling we
do not ship, so they say so instead of half-working. Every method writes its output atomically and
records the drift (``export.json``); a drift beyond ``tolerance`` fails the job and writes nothing.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from largeforge.errors import InvalidInput, JobFailed, Unavailable
from largeforge.export.model_files import (
    EXPORT_METADATA_FILE,
    export_metadata,
    read_gguf_pre_tokenizer,
    require_model_dir,
    staged_directory,
)
from largeforge.export.parity import ParityReport, check_parity
from largeforge.progress import NullProgress, ProgressReporter

QuantizeMethod = Literal["int8", "bnb8", "bnb4", "awq", "gptq"]
# A sanity bound, not a quality gate: per-channel int8 moved logits by 0.2-0.3 on the test models
# (weights ~ N(0, 0.2)); a broken quantizer (wrong scale, transposed rows) moves them by whole units.
# The report carries the measured drift and greedy agreement; pass a tighter tolerance to gate on them.
DEFAULT_TOLERANCE = 1.0


@dataclass(frozen=True)
class QuantizeResult:
    out_dir: str
    source: str
    method: str
    quantized_tensors: int
    size_bytes: int
    source_size_bytes: int
    parity: ParityReport

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantize_model(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    method: str = "int8",
    tolerance: float = DEFAULT_TOLERANCE,
    min_greedy_agreement: float = 0.0,
    prompts: list[str] | None = None,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
) -> QuantizeResult:
    """Quantize ``model_dir`` into ``out_dir`` with ``method`` (see ``QUANTIZERS``).

    Raises:
        InvalidInput: an unknown method, or a model directory we refuse (pickle-only weights).
        Unavailable: the method needs a CUDA GPU or a library that is missing here.
        JobFailed: the drift exceeds ``tolerance`` or the greedy agreement ``min_greedy_agreement``.
    """
    if method not in QUANTIZERS:
        raise InvalidInput(f"unknown quantization method {method!r}; choose one of {', '.join(QUANTIZERS)}")
    return QUANTIZERS[method](
        model_dir,
        out_dir,
        tolerance=tolerance,
        min_greedy_agreement=min_greedy_agreement,
        prompts=prompts,
        overwrite=overwrite,
        progress=progress,
    )


def quantize_int8(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_greedy_agreement: float = 0.0,
    prompts: list[str] | None = None,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
) -> QuantizeResult:
    """Per-output-channel symmetric int8 of every untied ``nn.Linear`` weight, on the CPU.

    The result loads with :func:`largeforge.export.int8.load_int8_model`; the parity check runs that
    loader on the staged output, so what is measured is what is shipped.
    """
    from transformers import AutoModelForCausalLM

    from largeforge.export.int8 import load_int8_model, quantize_state, save_int8_weights
    from largeforge.model_source import load_tokenizer

    reporter = progress or NullProgress()
    source = require_model_dir(model_dir)
    tokenizer = load_tokenizer(source)
    target = Path(out_dir).expanduser().resolve()
    with staged_directory(target, overwrite=overwrite) as staging:
        with reporter.task("Quantizing to int8", total=1) as task:
            model = _load_source_model(AutoModelForCausalLM, source)
            tensors, quantized = quantize_state(model)
            save_int8_weights(tensors, staging)
            model.config.save_pretrained(staging)
            model.generation_config.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            task.advance()
        report = check_parity(
            model,
            lambda: load_int8_model(staging),
            tokenizer,
            prompts=prompts,
            tolerance=tolerance,
            min_greedy_agreement=min_greedy_agreement,
            progress=reporter,
        )
        _raise_unless_passed(report, target, "int8")
        _write_metadata(staging, source, "int8", report, quantized_weights=quantized)
        size = _size_of(staging)
    return QuantizeResult(
        out_dir=str(target),
        source=str(source),
        method="int8",
        quantized_tensors=len(quantized),
        size_bytes=size,
        source_size_bytes=_size_of(source),
        parity=report,
    )


def _load_source_model(auto_class: Any, source: Path, **kwargs: Any) -> Any:
    import torch

    kwargs.setdefault("dtype", torch.float32)
    try:
        return auto_class.from_pretrained(str(source), use_safetensors=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load model {source}: {exc}") from exc


def _raise_unless_passed(report: ParityReport, target: Path, method: str) -> None:
    if not report.passed:
        raise JobFailed(
            f"{method} quantization drifted too far, so nothing was written to {target}: {report.summary()}. "
            "Raise the tolerance (--tolerance) if this drift is acceptable for your use"
        )


def _write_metadata(staging: Path, source: Path, method: str, report: ParityReport, **fields: Any) -> None:
    metadata = export_metadata(
        "quantize",
        method=method,
        source=str(source),
        gguf_pre_tokenizer=read_gguf_pre_tokenizer(source),
        parity=report.to_dict(),
        **fields,
    )
    (staging / EXPORT_METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def _size_of(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _require_cuda(method: str, package: str, install: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise Unavailable(
            f"{method} quantization needs a CUDA GPU and none is visible; on this machine use --method int8"
        )
    if importlib.util.find_spec(package) is None:
        raise Unavailable(f"{method} quantization needs {package}: {install}; or use --method int8")


def _quantize_bitsandbytes(bits: int) -> Callable[..., QuantizeResult]:
    """bitsandbytes load-and-save: transformers quantizes while loading and serializes the result."""

    def run(
        model_dir: str | Path,
        out_dir: str | Path,
        *,
        tolerance: float,
        min_greedy_agreement: float,
        prompts: list[str] | None,
        overwrite: bool,
        progress: ProgressReporter | None,
    ) -> QuantizeResult:
        import torch
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        from largeforge.model_source import load_tokenizer

        method = f"bnb{bits}"
        _require_cuda(method, "bitsandbytes", "pip install bitsandbytes")
        source, target = require_model_dir(model_dir), Path(out_dir).expanduser().resolve()
        tokenizer = load_tokenizer(source)
        config = BitsAndBytesConfig(load_in_8bit=True) if bits == 8 else BitsAndBytesConfig(load_in_4bit=True)
        with staged_directory(target, overwrite=overwrite) as staging:
            quantized = _load_source_model(
                AutoModelForCausalLM,
                source,
                dtype=torch.float16,
                quantization_config=config,
                device_map="cuda",
            )
            quantized.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            report = check_parity(
                lambda: _load_source_model(
                    AutoModelForCausalLM, source, dtype=torch.float16, device_map="cuda"
                ),
                quantized,
                tokenizer,
                prompts=prompts,
                tolerance=tolerance,
                min_greedy_agreement=min_greedy_agreement,
                progress=progress,
            )
            _raise_unless_passed(report, target, method)
            _write_metadata(staging, source, method, report)
            size = _size_of(staging)
        layers = sum(type(m).__name__ in ("Linear4bit", "Linear8bitLt") for m in quantized.modules())
        return QuantizeResult(str(target), str(source), method, layers, size, _size_of(source), report)

    return run


def _needs_calibration_tooling(method: str, module: str, package: str) -> Callable[..., QuantizeResult]:
    def run(model_dir: str | Path, out_dir: str | Path, **_: Any) -> QuantizeResult:
        _require_cuda(method, module, f"pip install {package}")
        raise Unavailable(
            f"{method} quantization needs calibration data and is not built into LargeForge yet; quantize "
            f"with {package} directly and register its output, or use --method int8 / bnb4 / bnb8"
        )

    return run


QUANTIZERS: dict[str, Callable[..., QuantizeResult]] = {
    "int8": quantize_int8,
    "bnb8": _quantize_bitsandbytes(8),
    "bnb4": _quantize_bitsandbytes(4),
    "awq": _needs_calibration_tooling("awq", "awq", "autoawq"),
    "gptq": _needs_calibration_tooling("gptq", "gptqmodel", "gptqmodel"),
}

__all__ = [
    "DEFAULT_TOLERANCE",
    "QUANTIZERS",
    "QuantizeMethod",
    "QuantizeResult",
    "quantize_int8",
    "quantize_model",
]
