"""Merge a LoRA adapter into its base model, proven equal by the parity check before anything is written.

Owns turning a training run's ``final/`` adapter into a standalone model directory (safetensors
weights, tokenizer, chat template, ``export.json`` provenance). A merged model is only worth shipping
if it computes what base + adapter computed, so the merged model is compared with the unmerged one
and a failed comparison writes nothing. Registering the result is the registry's job, not this one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, JobFailed, NotFound
from largeforge.export.model_files import (
    EXPORT_METADATA_FILE,
    export_metadata,
    read_gguf_pre_tokenizer,
    read_json,
    refuse_pickle_only,
    require_model_dir,
    staged_directory,
)
from largeforge.export.parity import ParityReport
from largeforge.export.parity import check_parity as run_parity_check
from largeforge.progress import NullProgress, ProgressReporter

ADAPTER_CONFIG = "adapter_config.json"
MERGEABLE_PEFT_TYPES = ("LORA",)
# Merging re-associates a sum (W + s·B·A); the rounding it moves scales with the weights' precision.
DEFAULT_TOLERANCES = {"float32": 1e-3, "float16": 1e-2, "bfloat16": 5e-2}


@dataclass(frozen=True)
class MergeResult:
    out_dir: str
    adapter: str
    base: str
    dtype: str
    parameters: int
    parity: ParityReport | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge_adapter(
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    base: str | Path | None = None,
    check_parity: bool = True,
    tolerance: float | None = None,
    prompts: list[str] | None = None,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
) -> MergeResult:
    """Merge ``adapter_dir`` into its base and save a full model in ``out_dir``.

    Args:
        adapter_dir: a PEFT LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``),
            e.g. a LoRA training run's ``final/``.
        base: the base model; default: ``base_model_name_or_path`` from the adapter config.
        check_parity: compare merged vs unmerged on canary prompts; a failure writes nothing.
        tolerance: the largest acceptable logit difference; default by dtype (1e-3 for float32).
        prompts: user messages to use as canaries instead of the built-in ones.

    Raises:
        NotFound: the adapter or base does not exist.
        InvalidInput: not a mergeable adapter, pickle-only weights, or an adapter that does not fit the base.
        Conflict: ``out_dir`` exists and ``overwrite`` is False.
        JobFailed: the merged model fails the parity check (the message has the numbers).
    """
    from largeforge.model_source import load_tokenizer

    reporter = progress or NullProgress()
    adapter = _require_adapter_dir(adapter_dir)
    source = _resolve_base(adapter, base)
    tokenizer = load_tokenizer(adapter if (adapter / "tokenizer_config.json").exists() else source)
    target = Path(out_dir).expanduser().resolve()
    with reporter.task("Loading base model + adapter", total=1) as task:
        unmerged = _load_unmerged(source, adapter)
        task.advance()
    dtype = str(next(unmerged.parameters()).dtype).removeprefix("torch.")
    merged: list[Any] = []

    def merge() -> Any:
        merged.append(_merge(unmerged))
        return merged[0]

    report = None
    if check_parity:
        report = run_parity_check(
            unmerged,
            merge,  # runs after the unmerged model was measured: merging changes it in place
            tokenizer,
            prompts=prompts,
            tolerance=tolerance if tolerance is not None else DEFAULT_TOLERANCES.get(dtype, 1e-3),
            min_greedy_agreement=1.0,
            progress=reporter,
        )
        if not report.passed:
            raise JobFailed(
                f"the merged model does not match base + adapter, so nothing was written to {target}: "
                f"{report.summary()}. Check that {adapter} was trained on {source}"
            )
    model = merged[0] if merged else merge()
    metadata = export_metadata(
        "merge",
        source_adapter=str(adapter),
        base=source,
        dtype=dtype,
        gguf_pre_tokenizer=read_gguf_pre_tokenizer(Path(source)) if Path(source).is_dir() else None,
        parity=report.to_dict() if report else None,
    )
    with reporter.task("Saving merged model", total=1) as task:
        _save(model, tokenizer, metadata, target, overwrite)
        task.advance()
    parameters = sum(p.numel() for p in model.parameters())
    return MergeResult(str(target), str(adapter), source, dtype, parameters, report)


def _resolve_base(adapter: Path, base: str | Path | None) -> str:
    """The base model: ``base`` if given, else the one the adapter config names; checked like any model."""
    from largeforge.model_source import resolve_model_source

    reference = (
        base if base is not None else read_json(adapter / ADAPTER_CONFIG).get("base_model_name_or_path")
    )
    if not reference:
        raise InvalidInput(f"{adapter / ADAPTER_CONFIG} names no base model; pass base= (--base DIR)")
    source = resolve_model_source(reference)
    if Path(source).is_dir():
        require_model_dir(source, what="base model")
    return source


def _save(model: Any, tokenizer: Any, metadata: dict[str, Any], target: Path, overwrite: bool) -> None:
    with staged_directory(target, overwrite=overwrite) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / EXPORT_METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def _require_adapter_dir(path: str | Path) -> Path:
    adapter = Path(path).expanduser().resolve()
    if not adapter.is_dir():
        raise NotFound(f"adapter directory {adapter} does not exist")
    if not (adapter / ADAPTER_CONFIG).exists():
        hint = " (it is a full model: nothing to merge)" if (adapter / "config.json").exists() else ""
        raise InvalidInput(f"{adapter} has no {ADAPTER_CONFIG}, so it is not a PEFT adapter{hint}")
    peft_type = read_json(adapter / ADAPTER_CONFIG).get("peft_type")
    if peft_type not in MERGEABLE_PEFT_TYPES:
        raise InvalidInput(
            f"{adapter} is a {peft_type} adapter; merging supports {', '.join(MERGEABLE_PEFT_TYPES)} adapters"
        )
    refuse_pickle_only(adapter, pattern="adapter_model*.safetensors", what="adapter")
    return adapter


def _load_unmerged(source: str, adapter: Path) -> Any:
    """Base (in its saved dtype, safetensors only) with the adapter attached but not merged."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    try:
        base_model = AutoModelForCausalLM.from_pretrained(source, dtype="auto", use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load base model {source}: {exc}") from exc
    try:
        return PeftModel.from_pretrained(base_model, str(adapter), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        # RuntimeError is torch's size mismatch: an adapter trained on another base model.
        raise InvalidInput(
            f"cannot apply adapter {adapter} to {source}: {exc}; pass the right --base"
        ) from exc


def _merge(model: Any) -> Any:
    try:
        return model.merge_and_unload(safe_merge=True)
    except ValueError as exc:  # safe_merge found NaN/inf in a merged weight
        raise JobFailed(f"merging produced non-finite weights: {exc}") from exc


__all__ = ["DEFAULT_TOLERANCES", "MergeResult", "merge_adapter"]
