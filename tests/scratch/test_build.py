from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from largeforge.errors import Conflict, InvalidInput
from largeforge.scratch import PRESETS, build_base_model
from largeforge.scratch.presets import build_config
from largeforge.scratch.tokenizer import QWEN2_SPLIT_PATTERN, train_tokenizer
from tests.conftest import NANO_CORPUS, NANO_OVERRIDES

CHAT = [
    {"role": "system", "content": "Answer in JSON."},
    {"role": "user", "content": "Maria Lopez, 34, lives in Lisbon."},
    {"role": "assistant", "content": '{"name": "Maria Lopez"}'},
]


def test_tiny_model_loads_with_auto_classes_and_generates(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "qwen2"
    assert model.config.vocab_size == len(tokenizer)
    inputs = tokenizer.apply_chat_template(
        CHAT[:2], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 4
    assert (tiny_model_dir / "model.safetensors").exists()
    assert not list(tiny_model_dir.glob("*.bin")), "weights must be safetensors only"


def test_label_mask_marks_only_assistant_tokens(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoded = tokenizer.apply_chat_template(
        CHAT, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    untrained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if not m])
    assert trained == '{"name": "Maria Lopez"}<|im_end|>'
    assert "Answer in JSON." in untrained and "lives in Lisbon" in untrained
    assert 'Maria Lopez"}' not in untrained


def test_chat_template_renders_chatml_with_generation_prompt(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tokenizer.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nAnswer in JSON.<|im_end|>\n"
        "<|im_start|>user\nMaria Lopez, 34, lives in Lisbon.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_tokenizer_round_trips_any_text_and_splits_digits() -> None:
    tokenizer = train_tokenizer(NANO_CORPUS, vocab_size=300)
    text = "Zoë écrit 12345 ✓ and 🙂\n\ttabs"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    # The Qwen2 split puts every digit in its own pre-token, so no token spans two digits.
    digit_tokens = [tokenizer.decode([i]) for i in tokenizer("1234567")["input_ids"]]
    assert digit_tokens == list("1234567")
    assert r"\p{N}" in QWEN2_SPLIT_PATTERN


def test_too_small_vocabulary_is_refused() -> None:
    with pytest.raises(InvalidInput, match="too small"):
        train_tokenizer(NANO_CORPUS, vocab_size=100)


def test_same_seed_gives_same_weights_and_metadata(tmp_path: Path) -> None:
    first = build_base_model(tmp_path / "a", corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES)
    second = build_base_model(tmp_path / "b", corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert first.parameters == second.parameters == sum(v.numel() for v in a.values())
    meta = json.loads((tmp_path / "a" / "largeforge.json").read_text())
    assert meta["gguf_pre_tokenizer"] == "qwen2" and meta["preset"] == "tiny"


def test_non_empty_target_needs_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(Conflict, match="--overwrite"):
        build_base_model(target, corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES)
    assert (target / "keep.txt").read_text() == "precious"


def test_llama_architecture_and_custom_config(tmp_path: Path) -> None:
    llama = build_base_model(
        tmp_path / "llama", architecture="llama", corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES
    )
    assert llama.architecture == "llama"
    config = AutoModelForCausalLM.from_pretrained(tmp_path / "llama").config
    config.num_hidden_layers = 1
    config.save_pretrained(tmp_path / "cfg")
    custom = build_base_model(
        tmp_path / "custom", corpus=NANO_CORPUS, vocab_size=300, config_path=tmp_path / "cfg"
    )
    assert custom.preset is None and custom.config["num_hidden_layers"] == 1
    assert custom.parameters < llama.parameters


def test_unknown_override_and_architecture_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="hidden_sise"):
        build_base_model(tmp_path / "x", corpus=NANO_CORPUS, overrides={"hidden_sise": 3})
    with pytest.raises(InvalidInput, match="gpt9"):
        build_base_model(tmp_path / "y", corpus=NANO_CORPUS, vocab_size=300, architecture="gpt9")


@pytest.mark.parametrize(
    ("name", "low", "high"), [("tiny", 0.3e6, 1.2e6), ("small", 4e6, 20e6), ("mid", 50e6, 70e6)]
)
def test_preset_sizes_match_their_documented_range(name: str, low: float, high: float) -> None:
    preset = PRESETS[name]
    config = build_config(
        preset, "qwen2", vocab_size=preset.vocab_size, special_ids={"bos": 0, "eos": 1, "pad": 0}
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert low <= sum(p.numel() for p in model.parameters()) <= high
