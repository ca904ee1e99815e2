"""Show what a trainer will see: rows rendered through a model's chat template, with the label mask.

Training on the prompt instead of the answer (a template without ``{% generation %}`` markers, a
wrong mask) is the most common silent bug in fine-tuning tools; the preview makes it visible before a
single step runs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from largeforge.errors import InvalidInput

_GENERATION_MARKER = re.compile(r"{%-?\s*generation\s*-?%}")


@dataclass(frozen=True)
class PreviewRow:
    """One row as token ids with a per-token "trained on" flag.

    ``trained[i]`` is True when token ``i`` contributes to the loss (its label is not -100).
    """

    row: int
    rendered: str
    token_ids: list[int]
    tokens: list[str]
    trained: list[bool]

    @property
    def trained_count(self) -> int:
        return sum(self.trained)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"trained_count": self.trained_count, "total_count": len(self.token_ids)}


@dataclass
class Preview:
    kind: str
    rows: list[PreviewRow]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "warnings": self.warnings, "rows": [r.to_dict() for r in self.rows]}


def has_generation_markers(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None) or ""
    return bool(_GENERATION_MARKER.search(template if isinstance(template, str) else str(template)))


def preview_rows(rows: list[dict[str, Any]], kind: str, tokenizer: Any, *, limit: int = 3) -> Preview:
    """Render up to ``limit`` normalised rows of ``kind`` and mark the trained tokens.

    Conversations use the template's assistant mask (assistant-only loss); preference and KTO rows train
    on the completion after the prompt; text trains on everything; prompt-only rows train on nothing
    (the model generates the answer during RL or distillation).

    Raises:
        InvalidInput: conversations need a chat template and the tokenizer has none.
    """
    warnings: list[str] = []
    needs_template = kind in {"conversation", "prompt"} or _uses_messages(rows[:1], kind)
    if needs_template and not getattr(tokenizer, "chat_template", None):
        raise InvalidInput(
            "the tokenizer has no chat template, so conversation rows cannot be rendered; "
            "use a model with a chat template (e.g. one from `largeforge model init`)"
        )
    if kind == "conversation" and not has_generation_markers(tokenizer):
        warnings.append(
            "the chat template has no {% generation %} markers: assistant-only loss cannot be computed "
            "and a trainer would learn the prompts too; add the markers around assistant content"
        )
    render = _RENDERERS[kind]
    previews = []
    for number, row in enumerate(rows[:limit], start=1):
        ids, trained = render(row, tokenizer)
        previews.append(
            PreviewRow(
                row=number,
                rendered=tokenizer.decode(ids),
                token_ids=ids,
                tokens=[tokenizer.decode([i]) for i in ids],
                trained=trained,
            )
        )
    return Preview(kind=kind, rows=previews, warnings=warnings)


def _uses_messages(rows: list[dict[str, Any]], kind: str) -> bool:
    return bool(rows) and kind in {"preference", "kto"} and isinstance(rows[0].get("prompt"), list)


def _conversation(row: dict[str, Any], tokenizer: Any) -> tuple[list[int], list[bool]]:
    encoded = tokenizer.apply_chat_template(
        row["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = list(encoded["input_ids"])
    mask = encoded.get("assistant_masks") or [0] * len(ids)
    return ids, [bool(m) for m in mask]


def _text(row: dict[str, Any], tokenizer: Any) -> tuple[list[int], list[bool]]:
    ids = list(tokenizer(row["text"], add_special_tokens=False)["input_ids"])
    return ids, [True] * len(ids)


def _prompt_ids(prompt: Any, tokenizer: Any) -> list[int]:
    if isinstance(prompt, list):
        encoded = tokenizer.apply_chat_template(
            prompt, tokenize=True, return_dict=True, add_generation_prompt=True
        )
        return list(encoded["input_ids"])
    return list(tokenizer(str(prompt), add_special_tokens=False)["input_ids"])


def _completion(row: dict[str, Any], tokenizer: Any, answer_key: str) -> tuple[list[int], list[bool]]:
    prompt_ids = _prompt_ids(row["prompt"], tokenizer)
    answer = row[answer_key]
    if isinstance(answer, list):
        # Tokenize the answer as the template renders it after the generation prompt.
        full = tokenizer.apply_chat_template(row["prompt"] + answer, tokenize=True, return_dict=True)
        ids = list(full["input_ids"])
        return ids, [i >= len(prompt_ids) for i in range(len(ids))]
    answer_ids = list(tokenizer(str(answer), add_special_tokens=False)["input_ids"])
    return prompt_ids + answer_ids, [False] * len(prompt_ids) + [True] * len(answer_ids)


def _prompt_only(row: dict[str, Any], tokenizer: Any) -> tuple[list[int], list[bool]]:
    prompt = row["prompt"]
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
    ids = _prompt_ids(messages, tokenizer)
    return ids, [False] * len(ids)


_RENDERERS = {
    "conversation": _conversation,
    "text": _text,
    "preference": lambda row, tok: _completion(row, tok, "chosen"),
    "kto": lambda row, tok: _completion(row, tok, "completion"),
    "prompt": _prompt_only,
}

__all__ = ["Preview", "PreviewRow", "has_generation_markers", "preview_rows"]
