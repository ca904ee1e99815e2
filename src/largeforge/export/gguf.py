"""Our own GGUF converter for Llama- and Qwen2-architecture models, and a reader for its output.

Owns the architecture keys and the tensors (HF name → GGUF name, dtype, the Llama q/k permutation);
the vocabulary is ``export/gguf_vocab.py``'s. It follows llama.cpp's ``convert_hf_to_gguf.py``
(``LlamaModel`` and ``Qwen2Model``), written against the ``gguf`` package rather than vendored, so a
LargeForge model becomes a file llama.cpp and Ollama run without a llama.cpp checkout.

Why Llama's q/k weights are permuted and Qwen2's are not: transformers applies RoPE to the two
halves of each head (``rotate_half``, what GGML calls NEOX). llama.cpp runs LLAMA with
``LLAMA_ROPE_TYPE_NORM``, which rotates adjacent pairs, so ``LlamaModel.permute`` interleaves the
halves of every q/k head when converting; QWEN2 runs with ``LLAMA_ROPE_TYPE_NEOX`` and
``Qwen2Model`` writes q/k unchanged. Tied embeddings: no ``output.weight``; llama.cpp reuses
``token_embd``.

Types: ``f32`` writes everything as F32; ``f16`` writes 2-D weights as F16; ``q8_0`` writes 2-D
weights as Q8_0 (F16 where a row is not a multiple of the 32-value block). 1-D tensors (norms,
biases) are always F32, as llama.cpp does.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.export.gguf_vocab import build_vocab
from largeforge.export.int8 import INT8_WEIGHTS_FILE
from largeforge.export.model_files import read_json, require_model_dir, safetensors_files, staged_file
from largeforge.progress import NullProgress, ProgressReporter

ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
GGUF_TYPES = ("f32", "f16", "q8_0")
Q8_0_BLOCK = 32
_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_BLOCK_NAMES = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")


@dataclass(frozen=True)
class ModelShape:
    """The hyperparameters a GGUF header needs, read from ``config.json`` and checked."""

    architecture: str
    context_length: int
    embedding_length: int
    block_count: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    rope_freq_base: float
    rms_eps: float
    vocab_size: int
    tied_embeddings: bool


@dataclass(frozen=True)
class GGUFResult:
    path: str
    architecture: str
    type: str
    tensor_count: int
    token_count: int
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_gguf(
    model_dir: str | Path,
    out_path: str | Path,
    *,
    type: str = "f16",
    pre_tokenizer: str | None = None,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
) -> GGUFResult:
    """Convert a Llama/Qwen2 model directory (safetensors) into one GGUF file.

    Args:
        type: ``f32``, ``f16`` or ``q8_0`` (see the module docstring).
        pre_tokenizer: llama.cpp pre-tokenizer name; default: recorded in largeforge.json, else detected.

    Raises:
        InvalidInput: another architecture or type, a config llama.cpp would run differently
            (RoPE scaling, sliding window, another activation), or an unsupported tokenizer.
        NotFound: no such model directory. Conflict: ``out_path`` exists and ``overwrite`` is False.
    """
    import gguf

    if type not in GGUF_TYPES:
        raise InvalidInput(f"unknown GGUF type {type!r}; choose one of {', '.join(GGUF_TYPES)}")
    source = require_model_dir(model_dir)
    if (source / INT8_WEIGHTS_FILE).exists():
        raise InvalidInput(
            f"{source} holds LargeForge int8 weights; convert the full-precision model instead and pick "
            "the GGUF type there (--type q8_0 is llama.cpp's 8-bit)"
        )
    config = read_json(source / "config.json")
    shape = read_model_shape(config, source)
    vocab = build_vocab(source, config, pre_tokenizer)
    target = Path(out_path).expanduser().resolve()
    with staged_file(target, overwrite=overwrite) as staging:
        # use_temp_file: tensors spool to disk past 256 MB instead of all sitting in memory.
        writer = gguf.GGUFWriter(str(staging), shape.architecture, use_temp_file=True)
        try:
            _add_header(writer, shape, type, source.name)
            vocab.add_to(writer)
            count = _add_tensors(writer, source, shape, type, progress or NullProgress())
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return GGUFResult(str(target), shape.architecture, type, count, len(vocab.tokens), target.stat().st_size)


def read_model_shape(config: dict[str, Any], source: Path) -> ModelShape:
    """Check ``config`` is something this converter writes faithfully, and read its shape."""
    names = config.get("architectures") or [config.get("model_type")]
    if len(names) != 1 or names[0] not in ARCHITECTURES:
        raise InvalidInput(
            f"{source} is {', '.join(map(str, names))}; GGUF export supports {', '.join(ARCHITECTURES)}"
        )
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    problems = [
        f"RoPE type {kind!r} (only default RoPE)"
        for kind in [rope.get("rope_type", rope.get("type", "default"))]
        if kind != "default"
    ]
    if config.get("hidden_act", "silu") != "silu":
        problems.append(f"activation {config.get('hidden_act')!r} (only silu)")
    if config.get("use_sliding_window"):
        problems.append("sliding-window attention")
    if problems:
        raise InvalidInput(f"{source} uses {'; '.join(problems)}, which this GGUF converter does not write")
    heads = int(config["num_attention_heads"])
    return ModelShape(
        architecture=ARCHITECTURES[names[0]],
        context_length=int(config["max_position_embeddings"]),
        embedding_length=int(config["hidden_size"]),
        block_count=int(config["num_hidden_layers"]),
        feed_forward_length=int(config["intermediate_size"]),
        head_count=heads,
        head_count_kv=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
        rope_freq_base=float(rope.get("rope_theta", config.get("rope_theta", 10000.0))),
        rms_eps=float(config["rms_norm_eps"]),
        vocab_size=int(config["vocab_size"]),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def _add_header(writer: Any, shape: ModelShape, type: str, name: str) -> None:
    import gguf

    file_types = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }
    writer.add_name(name)
    writer.add_file_type(int(file_types[type]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_vocab_size(shape.vocab_size)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.embedding_length)
    writer.add_block_count(shape.block_count)
    writer.add_feed_forward_length(shape.feed_forward_length)
    writer.add_head_count(shape.head_count)
    writer.add_head_count_kv(shape.head_count_kv)
    writer.add_rope_freq_base(shape.rope_freq_base)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    if shape.architecture == "llama":
        writer.add_rope_dimension_count(shape.head_dim)
    if shape.head_dim * shape.head_count != shape.embedding_length:
        writer.add_key_length(shape.head_dim)
        writer.add_value_length(shape.head_dim)


def gguf_tensor_name(hf_name: str) -> str | None:
    """The GGUF name of a HF tensor; None for tensors llama.cpp recomputes (RoPE frequencies).

    Raises:
        InvalidInput: a tensor this converter does not know (another model family, extra modules).
    """
    if hf_name.endswith("rotary_emb.inv_freq"):
        return None
    if hf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[hf_name]
    match = _LAYER.match(hf_name)
    if match and match[2] in _BLOCK_NAMES:
        return f"blk.{match[1]}.{_BLOCK_NAMES[match[2]]}.{match[3]}"
    raise InvalidInput(f"tensor {hf_name!r} has no GGUF mapping; is this a plain Llama/Qwen2 checkpoint?")


def _add_tensors(writer: Any, source: Path, shape: ModelShape, type: str, progress: ProgressReporter) -> int:
    """Map, permute and encode every tensor, one safetensors file open at a time."""
    from safetensors import safe_open

    files = safetensors_files(source)
    keys: dict[Path, list[str]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            keys[path] = list(handle.keys())
    if not shape.tied_embeddings and not any("lm_head.weight" in names for names in keys.values()):
        raise InvalidInput(
            f"{source} has untied embeddings but no lm_head.weight; the checkpoint is incomplete"
        )
    count = 0
    with progress.task("Writing GGUF tensors", total=sum(map(len, keys.values()))) as task:
        for path, names in keys.items():
            with safe_open(str(path), framework="pt") as handle:
                for key in names:
                    name = gguf_tensor_name(key)
                    if name is not None and not (name == "output.weight" and shape.tied_embeddings):
                        data = handle.get_tensor(key).float().numpy()
                        _add_tensor(writer, name, _permute_for_llama(name, data, shape), type)
                        count += 1
                    task.advance()
    return count


def _permute_for_llama(name: str, data: Any, shape: ModelShape) -> Any:
    """Interleave the halves of each q/k head (LlamaModel.permute); see the module docstring."""
    if (
        shape.architecture != "llama"
        or not name.startswith("blk.")
        or name.split(".")[2] not in ("attn_q", "attn_k")
    ):
        return data
    heads = shape.head_count if name.split(".")[2] == "attn_q" else shape.head_count_kv
    return (
        data.reshape(heads, 2, data.shape[0] // heads // 2, *data.shape[1:])
        .swapaxes(1, 2)
        .reshape(data.shape)
    )


def _add_tensor(writer: Any, name: str, data: Any, type: str) -> None:
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    if data.ndim <= 1 or type == "f32":
        writer.add_tensor(name, data.astype(np.float32))
    elif type == "q8_0" and data.shape[-1] % Q8_0_BLOCK == 0:
        writer.add_tensor(
            name, quantize(data, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0
        )
    else:
        writer.add_tensor(name, data.astype(np.float16))


__all__ = [
    "ARCHITECTURES",
    "GGUF_TYPES",
    "GGUFResult",
    "ModelShape",
    "gguf_tensor_name",
    "read_model_shape",
    "write_gguf",
]
