"""Export: turn training outputs into artifacts that run elsewhere, each checked against its source.

    merge_adapter      LoRA adapter + base → a full model (parity-checked, nothing written on failure)
    quantize_model     int8 on the CPU (our documented layout + ``load_int8_model``); GPU methods
    write_gguf         Llama/Qwen2 → GGUF (f32, f16, q8_0) for llama.cpp and Ollama
    write_modelfile    an Ollama Modelfile with the chat template as a Go template
    check_parity       the comparison the others use: logits on canary prompts + greedy tokens

Registering exported artifacts in the model registry is the registry's job, not this package's.
"""

from largeforge.export.gguf import GGUF_TYPES, GGUFResult, write_gguf
from largeforge.export.gguf_summary import GGUFSummary, read_gguf_summary
from largeforge.export.int8 import INT8_WEIGHTS_FILE, load_int8_model
from largeforge.export.merge import MergeResult, merge_adapter
from largeforge.export.ollama import ModelfileResult, write_modelfile
from largeforge.export.parity import DEFAULT_CANARY_PROMPTS, ParityReport, check_parity
from largeforge.export.quantize import (
    QUANTIZERS,
    QuantizeMethod,
    QuantizeResult,
    quantize_int8,
    quantize_model,
)

__all__ = [
    "DEFAULT_CANARY_PROMPTS",
    "GGUF_TYPES",
    "INT8_WEIGHTS_FILE",
    "QUANTIZERS",
    "GGUFResult",
    "GGUFSummary",
    "MergeResult",
    "ModelfileResult",
    "ParityReport",
    "QuantizeMethod",
    "QuantizeResult",
    "check_parity",
    "load_int8_model",
    "merge_adapter",
    "quantize_int8",
    "quantize_model",
    "read_gguf_summary",
    "write_gguf",
    "write_modelfile",
]
