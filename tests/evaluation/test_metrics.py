"""Perplexity on the tiny model: finite, deterministic, assistant-only for conversations, and lower
after a few training steps on the same data."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from largeforge.errors import InvalidInput
from largeforge.evaluation import TargetSpec, measure_perplexity, perplexity
from largeforge.evaluation.metrics import dataset_perplexity
from tests.evaluation.conftest import PROMPT_DATA, SFT_DATA

TEXT_DATA = SFT_DATA.with_name("extraction-text.jsonl")


def first_rows(source: Path, folder: Path, count: int = 12) -> Path:
    path = folder / source.name
    path.write_text("".join(source.read_text().splitlines(keepends=True)[:count]))
    return path


def test_training_lowers_perplexity_on_its_data(
    tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path
) -> None:
    data = str(first_rows(SFT_DATA, tmp_path))
    before = dataset_perplexity(str(tiny_model_dir), data)
    after = dataset_perplexity(str(tiny_adapter_dir), data)
    assert math.isfinite(before.perplexity) and math.isfinite(after.perplexity)
    # 6 LoRA steps at lr 3e-2 on these conversations; measured 309 -> 279 on all 64 rows.
    assert after.perplexity < before.perplexity * 0.97, (before.perplexity, after.perplexity)
    assert before.tokens == after.tokens and before.kind == "conversation" and before.rows == 12
    assert dataset_perplexity(str(tiny_model_dir), data).perplexity == before.perplexity  # deterministic


def test_conversations_score_only_assistant_tokens(tiny_model_dir: Path, tmp_path: Path) -> None:
    from largeforge.model_source import load_tokenizer

    data = first_rows(SFT_DATA, tmp_path, 4)
    result = dataset_perplexity(str(tiny_model_dir), str(data))
    tokenizer = load_tokenizer(tiny_model_dir)
    import json

    rows = [json.loads(line) for line in data.read_text().splitlines()]
    everything = sum(
        len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
        for r in rows
    )
    answers = sum(
        len(tokenizer(r["messages"][-1]["content"], add_special_tokens=False)["input_ids"]) for r in rows
    )
    # Each answer plus its closing <|im_end|> is scored; prompts and system turns are not.
    assert result.tokens == answers + len(rows) < everything


def test_text_rows_score_every_token_but_the_first(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = [{"text": "the cat sat on the mat"}, {"text": "hello world"}]
    result = perplexity(str(tiny_model_dir), rows, "text")
    from largeforge.model_source import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    assert result.tokens == sum(len(tokenizer(r["text"])["input_ids"]) - 1 for r in rows)
    # An untrained 300-token model is close to uniform: perplexity near the vocabulary size.
    assert 50 < result.perplexity < 2000
    assert dataset_perplexity(str(tiny_model_dir), str(first_rows(TEXT_DATA, tmp_path, 3))).kind == "text"


def test_unsuitable_targets_and_data_are_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="needs the model's weights, not an endpoint"):
        measure_perplexity(TargetSpec("m", base_url="http://served.test/v1"), str(SFT_DATA))
    with pytest.raises(InvalidInput, match="needs text or conversation data"):
        dataset_perplexity(str(tiny_model_dir), str(PROMPT_DATA))
    with pytest.raises(InvalidInput, match="no token to score"):
        perplexity(str(tiny_model_dir), [{"text": "a"}], "text")


def test_a_template_without_generation_markers_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    model = tmp_path / "plain-template"
    shutil.copytree(tiny_model_dir, model)
    (model / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(InvalidInput, match=r"no \{% generation %\} markers"):
        dataset_perplexity(str(model), str(first_rows(SFT_DATA, tmp_path, 2)))
