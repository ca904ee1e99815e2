from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from largeforge.data.preview import has_generation_markers, preview_rows
from largeforge.errors import InvalidInput

CONVERSATION = {
    "messages": [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "hello world"},
        {"role": "user", "content": "Again"},
        {"role": "assistant", "content": "the cat"},
    ]
}


def trained_text(tokenizer, row) -> str:  # type: ignore[no-untyped-def]
    return tokenizer.decode([i for i, t in zip(row.token_ids, row.trained, strict=True) if t])


def test_conversation_trains_on_every_assistant_turn_only(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    preview = preview_rows([CONVERSATION], "conversation", tokenizer)
    row = preview.rows[0]
    assert trained_text(tokenizer, row) == "hello world<|im_end|>the cat<|im_end|>"
    assert row.trained_count < len(row.token_ids)
    assert preview.warnings == []


def test_template_without_generation_markers_is_flagged(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = tokenizer.chat_template.replace("{%- generation -%}", "").replace(
        "{%- endgeneration -%}", ""
    )
    assert not has_generation_markers(tokenizer)
    preview = preview_rows([CONVERSATION], "conversation", tokenizer)
    assert "generation" in preview.warnings[0]
    assert preview.rows[0].trained_count == 0


def test_preference_trains_on_chosen_completion(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    row = {
        "prompt": [{"role": "user", "content": "Say hi"}],
        "chosen": [{"role": "assistant", "content": "hello"}],
        "rejected": [{"role": "assistant", "content": "go away"}],
    }
    preview = preview_rows([row], "preference", tokenizer)
    assert trained_text(tokenizer, preview.rows[0]).startswith("hello<|im_end|>")
    text_row = {"prompt": "Say hi.", "completion": " hello", "label": True}
    kto = preview_rows([text_row], "kto", tokenizer).rows[0]
    assert trained_text(tokenizer, kto) == " hello"


def test_text_trains_everything_and_prompt_nothing(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = preview_rows([{"text": "the cat sat"}], "text", tokenizer).rows[0]
    assert all(text.trained) and text.rendered == "the cat sat"
    prompt = preview_rows([{"prompt": "What is 2+2?", "answer": "4"}], "prompt", tokenizer).rows[0]
    assert not any(prompt.trained) and prompt.rendered.endswith("<|im_start|>assistant\n")


def test_missing_chat_template_is_a_clear_error(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    with pytest.raises(InvalidInput, match="no chat template"):
        preview_rows([CONVERSATION], "conversation", tokenizer)
