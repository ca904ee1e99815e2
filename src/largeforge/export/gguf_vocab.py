"""The tokenizer half of a GGUF file: a byte-level BPE vocabulary as llama.cpp's ``gpt2`` model.

Owns translating a Hugging Face fast tokenizer (``tokenizer.json``) into GGUF's ``tokenizer.ggml.*``
keys the way llama.cpp's ``convert_hf_to_gguf.py`` does (``get_vocab_base``): one token string per
embedding row (missing ids become ``[PADn]``, UNUSED), special added tokens as CONTROL, other added
tokens as USER_DEFINED, merges as ``"a b"`` strings, the llama.cpp pre-tokenizer name, special ids
and the chat template. The tensors and architecture keys are ``export/gguf.py``'s.

llama.cpp names its pre-tokenizers (the regex split before BPE) instead of storing the regex, so the
name must be right or llama.cpp tokenizes differently from transformers. Ours is recorded in
``largeforge.json`` (``gguf_pre_tokenizer``); without it we recognise the Qwen2 split regex and
refuse anything else rather than guess.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.export.model_files import read_gguf_pre_tokenizer

# HF's ``{% generation %}`` tag (assistant-token masks for training) is a transformers extension,
# not Jinja: plain jinja2 raises "unknown tag 'generation'", and so does any GGUF consumer without
# the extension (llama-cpp-python added one only in recent releases). ``{% if true %}`` renders the
# same text and keeps the whitespace-control dashes where they were.
_GENERATION_TAG = re.compile(r"\{%(-?)\s*(end)?generation\s*(-?)%\}")


@dataclass(frozen=True)
class GGUFVocab:
    pre: str
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | None

    def add_to(self, writer: Any) -> None:
        """Write the ``tokenizer.ggml.*`` and ``tokenizer.chat_template`` keys."""
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.token_types)
        writer.add_token_merges(self.merges)
        for setter, value in (
            (writer.add_bos_token_id, self.bos_id),
            (writer.add_eos_token_id, self.eos_id),
            (writer.add_pad_token_id, self.pad_id),
        ):
            if value is not None:
                setter(value)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def portable_chat_template(template: str) -> str:
    """``template`` without HF's ``{% generation %}`` markers, rendering the same text."""
    return _GENERATION_TAG.sub(
        lambda m: "{%" + m[1] + (" endif " if m[2] else " if true ") + m[3] + "%}", template
    )


def build_vocab(source: Path, config: dict[str, Any], pre_tokenizer: str | None = None) -> GGUFVocab:
    """Read the tokenizer of model directory ``source`` as a GGUF ``gpt2`` vocabulary.

    Args:
        config: the model's ``config.json``; ``vocab_size`` (embedding rows) sets the token count.
        pre_tokenizer: the llama.cpp pre-tokenizer name; default: recorded, else detected.

    Raises:
        InvalidInput: no ``tokenizer.json``, not byte-level BPE, an unknown pre-tokenizer, or more
            tokens than embedding rows.
    """
    from gguf import TokenType

    from largeforge.model_source import load_tokenizer

    path = source / "tokenizer.json"
    if not path.exists():
        raise InvalidInput(f"{source} has no tokenizer.json; GGUF export needs a fast (tokenizers) tokenizer")
    backend = json.loads(path.read_text(encoding="utf-8"))
    _require_byte_level_bpe(backend, source)
    tokenizer = load_tokenizer(source)
    added = {int(t["id"]): t for t in backend.get("added_tokens", [])}
    by_id = {int(i): token for token, i in backend["model"]["vocab"].items()} | {
        i: t["content"] for i, t in added.items()
    }
    rows = int(config.get("vocab_size") or len(by_id))
    if by_id and max(by_id) >= rows:
        raise InvalidInput(
            f"the tokenizer of {source} has ids up to {max(by_id)} but the model has {rows} embedding rows; "
            "resize the embeddings (model.resize_token_embeddings) and save again"
        )
    tokens, types = [], []
    for i in range(rows):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(int(TokenType.UNUSED))
        else:
            tokens.append(by_id[i])
            kind = TokenType.NORMAL
            if i in added:
                kind = TokenType.CONTROL if added[i].get("special") else TokenType.USER_DEFINED
            types.append(int(kind))
    bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else config.get("bos_token_id")
    with_specials = tokenizer("a")["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    return GGUFVocab(
        pre=pre_tokenizer or read_gguf_pre_tokenizer(source) or _detect_pre_tokenizer(backend, source),
        tokens=tokens,
        token_types=types,
        merges=[m if isinstance(m, str) else " ".join(m) for m in backend["model"].get("merges", [])],
        bos_id=bos_id,
        eos_id=tokenizer.eos_token_id
        if tokenizer.eos_token_id is not None
        else _first(config.get("eos_token_id")),
        pad_id=tokenizer.pad_token_id,
        add_bos=bos_id is not None and len(with_specials) > len(without) and with_specials[0] == bos_id,
        add_eos=len(with_specials) > len(without) and with_specials[-1] == tokenizer.eos_token_id,
        chat_template=portable_chat_template(template) if template else None,
    )


def _require_byte_level_bpe(backend: dict[str, Any], source: Path) -> None:
    model_type = backend.get("model", {}).get("type")
    decoder = json.dumps(backend.get("decoder") or {})
    if model_type != "BPE" or '"ByteLevel"' not in decoder:
        raise InvalidInput(
            f"the tokenizer of {source} is {model_type} with decoder {decoder[:80]}; GGUF export supports "
            "byte-level BPE tokenizers (GPT-2 style: Llama 3, Qwen2, ours)"
        )


def _detect_pre_tokenizer(backend: dict[str, Any], source: Path) -> str:
    from largeforge.scratch.tokenizer import GGUF_PRE_TOKENIZER, QWEN2_SPLIT_PATTERN

    pre = backend.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre])
    patterns = [(p.get("pattern") or {}).get("Regex") for p in parts if p.get("type") == "Split"]
    if patterns == [QWEN2_SPLIT_PATTERN]:
        return GGUF_PRE_TOKENIZER
    raise InvalidInput(
        f"cannot tell which llama.cpp pre-tokenizer matches the tokenizer of {source}; pass its llama.cpp "
        "name with pre_tokenizer= (--pre-tokenizer), e.g. llama-bpe for Llama 3 or qwen2 for Qwen2"
    )


def _first(value: Any) -> int | None:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return int(value) if value is not None else None


__all__ = ["GGUFVocab", "build_vocab", "portable_chat_template"]
