"""Merging a LoRA adapter: parity with base + adapter, real weight changes, nothing written on failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from largeforge.errors import Conflict, InvalidInput, JobFailed, NotFound
from largeforge.export import merge_adapter
from tests.export.conftest import pickle_only_dir

LORA_TARGETS = ("q_proj", "v_proj", "down_proj")


def test_merge_passes_parity_and_changes_the_adapted_weights(
    lora_adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    result = merge_adapter(lora_adapter_dir, tmp_path / "merged")
    out = Path(result.out_dir)
    assert result.parity is not None and result.parity.passed and result.parity.greedy_match
    assert result.parity.max_abs_logit_diff <= 1e-3 and result.dtype == "float32"
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "export.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not list(out.glob("*.bin")) and not (out / "adapter_config.json").exists()

    base, merged = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(merged) == set(base), "the merged model must be a plain base-shaped checkpoint"
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    # Exactly the LoRA-targeted weights moved, in every layer; everything else is the base's.
    assert changed == {k for k in base if any(f"{t}.weight" in k for t in LORA_TARGETS)}
    assert len(changed) == 2 * len(LORA_TARGETS)

    metadata = json.loads((out / "export.json").read_text())
    assert metadata["kind"] == "merge" and metadata["source_adapter"] == str(lora_adapter_dir)
    assert metadata["base"] == str(tiny_model_dir) and metadata["gguf_pre_tokenizer"] == "qwen2"
    assert metadata["parity"]["passed"] is True


def test_the_saved_merged_model_computes_base_plus_adapter(
    lora_adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = Path(merge_adapter(lora_adapter_dir, tmp_path / "merged", check_parity=False).out_dir)
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    unmerged = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_adapter_dir
    )
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        expected = unmerged.eval()(ids).logits
        actual = AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
        untouched = base.eval()(ids).logits
    assert torch.allclose(actual, expected, atol=1e-5)
    assert not torch.allclose(actual, untouched, atol=1e-5), (
        "the adapter had no effect; the test proves nothing"
    )
    assert json.loads((out / "export.json").read_text())["parity"] is None


def test_a_corrupted_merge_fails_parity_and_writes_nothing(
    lora_adapter_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peft.tuners.tuners_utils import BaseTuner

    original = BaseTuner.merge_and_unload

    def corrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        model = original(self, *args, **kwargs)
        with torch.no_grad():
            model.model.layers[0].self_attn.q_proj.weight.mul_(3.0)
        return model

    monkeypatch.setattr(BaseTuner, "merge_and_unload", corrupted)
    target = tmp_path / "out" / "merged"
    target.parent.mkdir()
    with pytest.raises(JobFailed, match=r"nothing was written.*max \|Δlogit\|") as failure:
        merge_adapter(lora_adapter_dir, target)
    assert "tolerance 0.001" in failure.value.message
    assert not target.exists()
    assert list(target.parent.iterdir()) == [], "a staging directory was left behind"


def test_base_override_and_adapter_errors(
    lora_adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        merge_adapter(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(InvalidInput, match="it is a full model"):
        merge_adapter(tiny_model_dir, tmp_path / "out")
    with pytest.raises(NotFound, match="not found"):
        merge_adapter(lora_adapter_dir, tmp_path / "out", base=tmp_path / "no-base")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(Conflict, match="overwrite"):
        merge_adapter(lora_adapter_dir, occupied)
    assert (occupied / "keep.txt").read_text() == "mine"
    result = merge_adapter(lora_adapter_dir, occupied, base=tiny_model_dir, overwrite=True)
    assert result.base == str(tiny_model_dir) and not (occupied / "keep.txt").exists()


def test_pickle_only_adapter_or_base_is_refused_unread(
    lora_adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    adapter = pickle_only_dir(tmp_path / "adapter", "adapter_model.bin", "adapter_config.json")
    with pytest.raises(InvalidInput, match="only has pickle weights"):
        merge_adapter(adapter, tmp_path / "out")
    base = pickle_only_dir(tmp_path / "base")
    shutil.copy(tiny_model_dir / "tokenizer_config.json", base)
    with pytest.raises(InvalidInput, match="only has pickle weights"):
        merge_adapter(lora_adapter_dir, tmp_path / "out", base=base)
    assert not (tmp_path / "out").exists()
