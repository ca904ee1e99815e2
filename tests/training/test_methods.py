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


def test_distill_on_policy_changes_the_student(
    make_recipe: Any, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from largeforge.scratch import build_base_model
    from tests.conftest import NANO_CORPUS, NANO_OVERRIDES

    # Same corpus and vocabulary size → the same tokenizer; another seed → a different teacher.
    teacher = tmp_path / "teacher"
    build_base_model(teacher, corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES, seed=1)
    recipe = make_recipe("distill", teacher=str(teacher), max_completion_length=8)
    result = run_training(recipe, output_dir=tmp_path / "run")
    assert_run_complete(result)
    assert_full_weights_changed(Path(result.final_dir), tiny_model_dir)


def test_distill_refuses_a_teacher_with_another_vocabulary(make_recipe: Any, tmp_path: Path) -> None:
    from largeforge.errors import InvalidInput
    from largeforge.scratch import build_base_model
    from tests.conftest import NANO_CORPUS, NANO_OVERRIDES

    teacher = tmp_path / "teacher"
    build_base_model(teacher, corpus=NANO_CORPUS, vocab_size=290, overrides=NANO_OVERRIDES)
    with pytest.raises(InvalidInput, match="share one tokenizer"):
        run_training(make_recipe("distill", teacher=str(teacher)), output_dir=tmp_path / "run")


def test_custom_script_gets_data_progress_checkpoints_and_final(make_recipe: Any, tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "examples" / "scripts" / "custom_train.py"
    recipe = make_recipe("custom", script=str(script), options={"save_every": 2})
    result = run_training(recipe, output_dir=tmp_path / "run")
    assert_run_complete(result)
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-2"]
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-2" / "COMPLETE").exists()
    assert (Path(result.final_dir) / "model.safetensors").exists()


def test_custom_command_metrics_come_from_json_lines(make_recipe: Any, tmp_path: Path) -> None:
    import sys

    program = tmp_path / "loop.py"
    program.write_text(
        "import json, sys, pathlib\n"
        "rows = pathlib.Path(sys.argv[1]).read_text().splitlines()\n"
        "final = pathlib.Path(sys.argv[2]); final.mkdir(parents=True, exist_ok=True)\n"
        "(final / 'weights.txt').write_text(str(len(rows)))\n"
        "for step in range(1, 4):\n"
        "    print('not json')\n"
        "    print(json.dumps({'step': step, 'loss': 1.0 / step, 'learning_rate': 0.1}))\n"
    )
    command = [sys.executable, str(program), "{data}", "{final_dir}"]
    result = run_training(make_recipe("custom", command=command), output_dir=tmp_path / "run")
    assert_run_complete(result)
    assert result.final_loss == pytest.approx(1 / 3)
    assert (Path(result.final_dir) / "weights.txt").read_text() == "64"
