"""Every method trains a few steps on the tiny model: parameters change and the loss is finite."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from largeforge.training import run_training
from largeforge.training.methods import METHODS
from largeforge.training.recipe import Recipe


def assert_lora_trained(final: Path) -> None:
    weights = load_file(final / "adapter_model.safetensors")
    lora_b = {k: v for k, v in weights.items() if "lora_B" in k}
    assert lora_b, "no LoRA B matrices were saved"
    # PEFT initialises lora_B to zeros: any non-zero entry proves an optimizer step reached the adapter.
    assert all(v.abs().sum() > 0 for v in lora_b.values())


def assert_full_weights_changed(final: Path, base: Path) -> None:
    before, after = load_file(base / "model.safetensors"), load_file(final / "model.safetensors")
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"


def assert_run_complete(result: Any) -> list[dict[str, Any]]:
    run = Path(result.run_dir)
    assert result.steps == 3 and result.final_loss is not None and math.isfinite(result.final_loss)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == [1, 2, 3]
    assert all({"loss", "learning_rate"} <= r.keys() for r in records if "loss" in r)
    assert json.loads((run / "result.json").read_text())["steps"] == 3
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["packages"]["trl"] and manifest["device"] == "cpu"
    final = Path(result.final_dir)
    assert (final / "chat_template.jinja").exists() and (final / "tokenizer.json").exists()
    assert not (final / "training_args.bin").exists()
    return records


def test_registry_keys_match_the_recipe_literals() -> None:
    import typing

    members = typing.get_args(typing.get_args(Recipe)[0])
    literals = {m.model_fields["method"].default for m in members}
    assert literals == set(METHODS)


def test_sft_lora_with_assistant_only_loss(make_recipe: Any, tmp_path: Path) -> None:
    result = run_training(make_recipe("sft", lora={"r": 4}), output_dir=tmp_path / "run")
    assert_run_complete(result)
    assert_lora_trained(Path(result.final_dir))
    assert (
        result.metrics["preflight"]["trainable_parameters"] < result.metrics["preflight"]["total_parameters"]
    )


def test_sft_full_fine_tune_with_packing(make_recipe: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    result = run_training(make_recipe("sft", packing=True), output_dir=tmp_path / "run")
    assert_run_complete(result)
    assert_full_weights_changed(Path(result.final_dir), tiny_model_dir)


def test_pretrain_from_scratch(make_recipe: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    result = run_training(make_recipe("pretrain"), output_dir=tmp_path / "run")
    assert_run_complete(result)
    assert_full_weights_changed(Path(result.final_dir), tiny_model_dir)


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_preference_methods_with_lora(method: str, make_recipe: Any, tmp_path: Path) -> None:
    result = run_training(make_recipe(method, lora={"r": 4}), output_dir=tmp_path / "run")
    records = assert_run_complete(result)
    assert_lora_trained(Path(result.final_dir))
    assert any(k.startswith("rewards/") for k in records[0]), "the preference trainer logged no rewards"


def test_orpo_full(make_recipe: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    result = run_training(make_recipe("orpo"), output_dir=tmp_path / "run")
    assert_run_complete(result)
    assert_full_weights_changed(Path(result.final_dir), tiny_model_dir)
