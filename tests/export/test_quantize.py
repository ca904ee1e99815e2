"""int8 quantization round trip, its documented layout, the drift report, and the GPU-only methods."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from largeforge.errors import InvalidInput, JobFailed, NotFound, Unavailable
from largeforge.export import QUANTIZERS, QuantizeMethod, load_int8_model, quantize_model
from largeforge.export.int8 import INT8_WEIGHTS_FILE, quantize_weight
from tests.export.conftest import pickle_only_dir


def test_registry_keys_match_the_method_literal() -> None:
    assert set(QUANTIZERS) == set(typing.get_args(QuantizeMethod))


def test_int8_round_trip_layout_and_drift(sharp_model_dirs: dict[str, Path], tmp_path: Path) -> None:
    source = sharp_model_dirs["llama"]
    result = quantize_model(source, tmp_path / "int8")
    out = Path(result.out_dir)
    assert result.method == "int8" and result.parity.passed
    # 7 Linear layers per block x 2 blocks; the tied lm_head stays the (unquantized) embedding.
    assert result.quantized_tensors == 14
    assert 0 < result.parity.max_abs_logit_diff < 0.5, "int8 cannot be exact, and must not drift far"
    assert result.parity.greedy_agreement >= 0.75
    assert result.size_bytes < result.source_size_bytes

    with safe_open(str(out / INT8_WEIGHTS_FILE), framework="pt") as handle:
        assert handle.metadata() == {"format": "largeforge-int8", "layout_version": "1"}
    stored, original = load_file(out / INT8_WEIGHTS_FILE), load_file(source / "model.safetensors")
    name = "model.layers.1.mlp.down_proj.weight"
    codes, scale = stored[f"{name}.int8"], stored[f"{name}.scale"]
    assert codes.dtype == torch.int8 and codes.shape == original[name].shape
    assert scale.dtype == torch.float32 and scale.shape == (original[name].shape[0],)
    assert int(codes.abs().amax(dim=1).min()) == 127, "each row's largest weight maps to ±127"
    error = (codes.float() * scale[:, None] - original[name]).abs()
    assert bool((error <= scale[:, None] / 2 + 1e-7).all()), "rounding error is at most half a step"
    assert stored["model.embed_tokens.weight"].dtype == torch.float32 and "lm_head.weight" not in stored

    model = load_int8_model(out)
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    assert torch.allclose(model.model.layers[1].mlp.down_proj.weight, codes.float() * scale[:, None])
    metadata = json.loads((out / "export.json").read_text())
    assert metadata["method"] == "int8" and len(metadata["quantized_weights"]) == 14
    assert metadata["parity"]["max_abs_logit_diff"] == result.parity.max_abs_logit_diff


def test_zero_rows_quantize_to_zero() -> None:
    codes, scale = quantize_weight(torch.tensor([[0.0, 0.0], [1.0, -0.5]]))
    assert codes.tolist() == [[0, 0], [127, -64]] and scale.tolist() == pytest.approx([1.0, 1 / 127])


def test_drift_beyond_the_tolerance_fails_and_writes_nothing(
    sharp_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(JobFailed, match="drifted too far, so nothing was written"):
        quantize_model(sharp_model_dirs["qwen2"], tmp_path / "int8", tolerance=1e-6)
    assert list(tmp_path.iterdir()) == []


def test_loader_refuses_other_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(NotFound, match="export quantize"):
        load_int8_model(tiny_model_dir)
    fake = tmp_path / "fake"
    fake.mkdir()
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(fake / INT8_WEIGHTS_FILE), metadata={"format": "other"})
    with pytest.raises(InvalidInput, match="is not largeforge-int8"):
        load_int8_model(fake)


@pytest.mark.parametrize("method", ["bnb4", "bnb8", "awq", "gptq"])
def test_gpu_methods_are_unavailable_without_cuda(
    method: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(Unavailable, match=f"{method} quantization needs a CUDA GPU.*--method int8"):
        quantize_model(tiny_model_dir, tmp_path / "out", method=method)
    assert not (tmp_path / "out").exists()


def test_unknown_method_and_pickle_only_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="choose one of int8, bnb8, bnb4, awq, gptq"):
        quantize_model(tmp_path, tmp_path / "out", method="int4")
    with pytest.raises(InvalidInput, match="only has pickle weights"):
        quantize_model(pickle_only_dir(tmp_path / "model"), tmp_path / "out")
