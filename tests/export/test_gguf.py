"""GGUF conversion read back with gguf.GGUFReader: tensors, types, metadata, vocabulary, template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.torch import load_file

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.export import read_gguf_summary, write_gguf
from largeforge.export.gguf import gguf_tensor_name
from largeforge.export.gguf_vocab import portable_chat_template
from tests.export.conftest import pickle_only_dir

BLOCK_TENSORS = {
    "qwen2": [
        "attn_norm",
        "ffn_norm",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
    ],
}
BLOCK_TENSORS["llama"] = BLOCK_TENSORS["qwen2"]
EXPECTED_TYPES = {"f32": "F32", "f16": "F16", "q8_0": "Q8_0"}


def expected_tensor_names(architecture: str, blocks: int = 2) -> set[str]:
    names = {"token_embd.weight", "output_norm.weight"}  # tied embeddings: no output.weight
    for i in range(blocks):
        names |= {f"blk.{i}.{t}.weight" for t in BLOCK_TENSORS[architecture]}
        if architecture == "qwen2":  # Qwen2 has q/k/v biases; our Llama has attention_bias=False
            names |= {f"blk.{i}.attn_{t}.bias" for t in "qkv"}
    return names


def gguf_tensor(path: Path, name: str) -> Any:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    tensor = next(t for t in GGUFReader(str(path)).tensors if t.name == name)
    return dequantize(tensor.data, tensor.tensor_type)


@pytest.mark.parametrize("architecture", ["qwen2", "llama"])
@pytest.mark.parametrize("gguf_type", ["f32", "f16", "q8_0"])
def test_written_and_read_back(
    architecture: str, gguf_type: str, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    source = model_dirs[architecture]
    result = write_gguf(source, tmp_path / "model.gguf", type=gguf_type)
    summary = read_gguf_summary(result.path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = json.loads((source / "config.json").read_text())

    assert summary.architecture == architecture == result.architecture
    assert set(summary.tensor_names) == expected_tensor_names(architecture)
    assert summary.tensor_count == result.tensor_count == len(expected_tensor_names(architecture))
    for name, kind in summary.tensor_types.items():
        assert kind == ("F32" if name.endswith(("norm.weight", ".bias")) else EXPECTED_TYPES[gguf_type]), name
    meta = summary.metadata
    assert meta[f"{architecture}.context_length"] == config["max_position_embeddings"] == 256
    assert meta[f"{architecture}.embedding_length"] == 32 and meta[f"{architecture}.block_count"] == 2
    assert meta[f"{architecture}.feed_forward_length"] == 64
    assert meta[f"{architecture}.attention.head_count"] == 2
    assert meta[f"{architecture}.attention.head_count_kv"] == 1
    assert meta[f"{architecture}.rope.freq_base"] == 10000.0
    assert meta[f"{architecture}.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-6)
    assert meta["general.file_type"] == {"f32": 0, "f16": 1, "q8_0": 7}[gguf_type]
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "qwen2"
    assert summary.token_count == result.token_count == len(tokenizer)
    assert (
        meta["tokenizer.ggml.eos_token_id"]
        == tokenizer.eos_token_id
        == tokenizer.convert_tokens_to_ids("<|im_end|>")
    )
    assert meta["tokenizer.ggml.padding_token_id"] == tokenizer.pad_token_id
    assert meta["tokenizer.ggml.bos_token_id"] == config["bos_token_id"]
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert summary.chat_template == portable_chat_template(tokenizer.chat_template)
    assert_renders_like_transformers(summary.chat_template, tokenizer)


def assert_renders_like_transformers(template: str, tokenizer: Any) -> None:
    """The GGUF's template is plain Jinja (no HF-only tags) and renders what transformers renders."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    assert "{%- generation" not in template and "endgeneration" not in template
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    compiled = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)
    for prompt in (True, False):
        expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        assert compiled.render(messages=messages, add_generation_prompt=prompt) == expected


def test_vocabulary_tokens_types_and_merges(tiny_model_dir: Path, tmp_path: Path) -> None:
    from gguf import GGUFReader, TokenType
    from transformers import AutoTokenizer

    reader = GGUFReader(str(write_gguf(tiny_model_dir, tmp_path / "m.gguf").path))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokens == [tokenizer.convert_ids_to_tokens(i) for i in range(len(tokenizer))]
    specials = {tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
    assert {i for i, t in enumerate(types) if t == TokenType.CONTROL} == specials
    assert all(t == TokenType.NORMAL for i, t in enumerate(types) if i not in specials)
    raw = json.loads((tiny_model_dir / "tokenizer.json").read_text())["model"]["merges"]
    assert merges == [" ".join(pair) for pair in raw] and all(len(m.split(" ")) == 2 for m in merges)


def test_name_mapping_agrees_with_the_gguf_package(model_dirs: dict[str, Path]) -> None:
    import gguf

    for architecture, source in model_dirs.items():
        arch = {"qwen2": gguf.MODEL_ARCH.QWEN2, "llama": gguf.MODEL_ARCH.LLAMA}[architecture]
        reference = gguf.get_tensor_name_map(arch, 2)
        for key in [*load_file(source / "model.safetensors"), "lm_head.weight"]:
            assert gguf_tensor_name(key) == reference.get_name(key, try_suffixes=(".weight", ".bias")), key
    with pytest.raises(InvalidInput, match="no GGUF mapping"):
        gguf_tensor_name("model.layers.0.mlp.experts.0.weight")


def test_llama_q_and_k_heads_are_interleaved_and_qwen2_is_not(
    model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """llama.cpp's LLAMA rope rotates adjacent pairs, HF rotates halves: row 2i ← i, row 2i+1 ← i + d/2."""
    for architecture, source in model_dirs.items():
        path = Path(write_gguf(source, tmp_path / f"{architecture}.gguf", type="f32").path)
        weights = load_file(source / "model.safetensors")
        for proj, heads in (("q", 2), ("k", 1)):
            hf = weights[f"model.layers.1.self_attn.{proj}_proj.weight"].numpy()
            written = gguf_tensor(path, f"blk.1.attn_{proj}.weight")
            if architecture == "qwen2":
                np.testing.assert_array_equal(written, hf)
                continue
            half = hf.shape[0] // heads // 2
            for head in range(heads):
                block, rows = (
                    hf[head * 2 * half : (head + 1) * 2 * half],
                    written[head * 2 * half : (head + 1) * 2 * half],
                )
                np.testing.assert_array_equal(rows[0::2], block[:half])
                np.testing.assert_array_equal(rows[1::2], block[half:])
            assert not np.array_equal(written, hf)


def test_q8_0_values_are_close_to_the_originals(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = Path(write_gguf(tiny_model_dir, tmp_path / "q8.gguf", type="q8_0").path)
    original = load_file(tiny_model_dir / "model.safetensors")["model.layers.0.mlp.down_proj.weight"].numpy()
    restored = gguf_tensor(path, "blk.0.ffn_down.weight")
    # Q8_0: one scale per 32 values, absmax / 127, stored as f16; the error is about half a step
    # (0.6: the f16 rounding of the scale, times up to 127, adds ~3% of a step).
    step = np.abs(original.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
    assert (np.abs(restored.reshape(-1, 32) - original.reshape(-1, 32)) <= step * 0.6).all()
    assert not np.array_equal(restored, original)


def test_refusals(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "gpt2"
    shutil.copytree(tiny_model_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(InvalidInput, match="GGUF export supports LlamaForCausalLM, Qwen2ForCausalLM"):
        write_gguf(other, tmp_path / "x.gguf")
    scaled = {**config, "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}}
    (other / "config.json").write_text(json.dumps(scaled))
    with pytest.raises(InvalidInput, match="RoPE type 'yarn'"):
        write_gguf(other, tmp_path / "x.gguf")
    with pytest.raises(InvalidInput, match="choose one of f32, f16, q8_0"):
        write_gguf(tiny_model_dir, tmp_path / "x.gguf", type="q4_k")
    with pytest.raises(InvalidInput, match="only has pickle weights"):
        write_gguf(pickle_only_dir(tmp_path / "pickled"), tmp_path / "x.gguf")
    with pytest.raises(NotFound):
        write_gguf(tmp_path / "absent", tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()
    with pytest.raises(NotFound):
        read_gguf_summary(tmp_path / "x.gguf")
    (tmp_path / "bad.gguf").write_bytes(b"definitely not gguf")
    with pytest.raises(InvalidInput, match="not a readable GGUF"):
        read_gguf_summary(tmp_path / "bad.gguf")


def test_pre_tokenizer_is_recorded_detected_or_required(tiny_model_dir: Path, tmp_path: Path) -> None:
    unrecorded = tmp_path / "unrecorded"
    shutil.copytree(tiny_model_dir, unrecorded)
    (unrecorded / "largeforge.json").unlink()
    detected = read_gguf_summary(write_gguf(unrecorded, tmp_path / "a.gguf").path)
    assert detected.metadata["tokenizer.ggml.pre"] == "qwen2"
    tokenizer_json = json.loads((unrecorded / "tokenizer.json").read_text())
    tokenizer_json["pre_tokenizer"] = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": True,
        "use_regex": True,
    }
    (unrecorded / "tokenizer.json").write_text(json.dumps(tokenizer_json))
    with pytest.raises(InvalidInput, match=r"pass its llama\.cpp name"):
        write_gguf(unrecorded, tmp_path / "b.gguf")
    chosen = write_gguf(unrecorded, tmp_path / "b.gguf", pre_tokenizer="gpt-2")
    assert read_gguf_summary(chosen.path).metadata["tokenizer.ggml.pre"] == "gpt-2"


def test_existing_output_needs_overwrite_and_int8_dirs_are_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from largeforge.export import quantize_model

    target = tmp_path / "m.gguf"
    target.write_bytes(b"old")
    with pytest.raises(Conflict):
        write_gguf(tiny_model_dir, target)
    assert target.read_bytes() == b"old"
    write_gguf(tiny_model_dir, target, overwrite=True)
    assert read_gguf_summary(target).tensor_count == len(expected_tensor_names("qwen2"))
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"], "a temporary file was left behind"
    int8 = quantize_model(tiny_model_dir, tmp_path / "int8").out_dir
    with pytest.raises(InvalidInput, match="--type q8_0"):
        write_gguf(int8, tmp_path / "int8.gguf")


def test_summary_is_json_serialisable(tiny_model_dir: Path, tmp_path: Path) -> None:
    summary = read_gguf_summary(write_gguf(tiny_model_dir, tmp_path / "m.gguf").path)
    document = json.loads(json.dumps(summary.to_dict()))
    assert (
        document["tensor_count"] == summary.tensor_count and document["metadata"]["general.name"] == "model"
    )
