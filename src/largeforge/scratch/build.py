"""Build an offline base model directory: tokenizer + randomly initialised decoder + metadata.

The result is a plain Hugging Face model directory (safetensors, tokenizer, chat template) that
``AutoModelForCausalLM`` / ``AutoTokenizer`` load without LargeForge. The directory is written to a
temporary sibling first and renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from largeforge.errors import Conflict, InvalidInput
from largeforge.progress import NullProgress, ProgressReporter
from largeforge.scratch.corpus import default_corpus
from largeforge.scratch.presets import build_config, get_preset
from largeforge.scratch.tokenizer import GGUF_PRE_TOKENIZER, train_tokenizer

METADATA_FILE = "largeforge.json"


@dataclass(frozen=True)
class BaseModelInfo:
    """What was built; also written to ``largeforge.json`` in the model directory."""

    path: str
    architecture: str
    preset: str | None
    parameters: int
    vocab_size: int
    config: dict[str, Any]
    corpus_sha256: str
    corpus_lines: int
    gguf_pre_tokenizer: str
    seed: int
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_base_model(
    out_dir: str | Path,
    *,
    preset: str = "tiny",
    architecture: str = "qwen2",
    corpus: Iterable[str] | None = None,
    vocab_size: int | None = None,
    config_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
) -> BaseModelInfo:
    """Train a tokenizer on ``corpus`` and save a freshly initialised model next to it.

    Args:
        out_dir: target directory; must not exist or be empty unless ``overwrite``.
        preset: ``tiny``, ``small`` or ``mid`` (ignored when ``config_path`` is given).
        architecture: ``qwen2`` or ``llama`` (ignored when ``config_path`` is given).
        corpus: texts for the tokenizer; the built-in corpus when None.
        vocab_size: target vocabulary size; the preset's when None.
        config_path: any transformers ``config.json`` (or a directory holding one) to use instead of a preset.
        overrides: preset fields to change, e.g. ``{"hidden_size": 32}``.
        seed: seeds weight initialisation, so the same inputs give the same weights.

    Raises:
        Conflict: ``out_dir`` holds files and ``overwrite`` is False.
        InvalidInput: unknown preset/architecture/override, or an unusable config or corpus.
    """
    import torch
    from transformers import AutoModelForCausalLM

    reporter = progress or NullProgress()
    target = Path(out_dir).expanduser().resolve()
    _check_target(target, overwrite)
    shape = get_preset(preset).with_overrides(overrides or {})
    texts = list(corpus) if corpus is not None else list(default_corpus())
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()

    with reporter.task("Building base model", total=3) as task:
        tokenizer = train_tokenizer(texts, vocab_size or shape.vocab_size)
        task.advance(stage="tokenizer")
        special_ids = {
            "bos": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos": tokenizer.eos_token_id,
            "pad": tokenizer.pad_token_id,
        }
        if config_path is not None:
            config = _load_config(Path(config_path), len(tokenizer), special_ids)
            preset_name: str | None = None
        else:
            config = build_config(shape, architecture, vocab_size=len(tokenizer), special_ids=special_ids)
            preset_name = preset
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
        model.generation_config.eos_token_id = special_ids["eos"]
        model.generation_config.pad_token_id = special_ids["pad"]
        task.advance(stage="model")

        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            info = BaseModelInfo(
                path=str(target),
                architecture=config.model_type,
                preset=preset_name,
                parameters=sum(p.numel() for p in model.parameters()),
                vocab_size=len(tokenizer),
                config={k: v for k, v in config.to_diff_dict().items() if isinstance(v, int | float | str)},
                corpus_sha256=digest,
                corpus_lines=len(texts),
                gguf_pre_tokenizer=GGUF_PRE_TOKENIZER,
                seed=seed,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            (staging / METADATA_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        task.advance(stage="saved")
    return info


def _check_target(target: Path, overwrite: bool) -> None:
    if target.exists() and not target.is_dir():
        raise Conflict(f"{target} exists and is a file; choose a directory path for the model")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise Conflict(f"{target} is not empty; pass --overwrite to replace it or choose another directory")
    target.parent.mkdir(parents=True, exist_ok=True)


def _load_config(path: Path, vocab_size: int, special_ids: dict[str, int]) -> Any:
    from transformers import AutoConfig

    if not path.exists():
        raise InvalidInput(f"config {path} does not exist; give a transformers config.json or its directory")
    try:
        config = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"{path} is not a usable transformers config: {exc}") from exc
    config.vocab_size = vocab_size
    config.bos_token_id, config.eos_token_id = special_ids["bos"], special_ids["eos"]
    config.pad_token_id = special_ids["pad"]
    return config


__all__ = ["METADATA_FILE", "BaseModelInfo", "build_base_model"]
