"""CPU int8 weight quantization: our own small, documented format, and the loader that runs it.

Owns the int8 layout and its round trip; choosing a quantization method and the GPU methods live in
``export/quantize.py``. The point of this format is a smaller artifact that runs anywhere torch runs
(no CUDA, no bitsandbytes) and whose drift from the original is measured, not guessed.

Layout of an int8 model directory (format ``largeforge-int8``, layout version 1)::

    config.json, generation_config.json     the transformers config, unchanged
    tokenizer files, chat_template.jinja    as saved by the tokenizer
    model.int8.safetensors                  the weights, see below
    export.json                             provenance + the parity report of the drift

In ``model.int8.safetensors`` every ``nn.Linear`` weight ``W`` (shape [out, in]) whose storage is
not shared with another module (a tied ``lm_head`` stays the embedding) is stored as two tensors:

    "<name>.weight.int8"   int8    [out, in]   round(W / scale[:, None]), clamped to [-127, 127]
    "<name>.weight.scale"  float32 [out]       max(|W[row]|) / 127 per output channel (1.0 for a zero row)

so ``W ≈ int8 * scale[:, None]`` (symmetric, per output channel). Every other tensor (embeddings,
norms, biases) is stored under its own name as float32 (the model is quantized from float32). The safetensors header metadata
holds ``{"format": "largeforge-int8", "layout_version": "1"}``. The file is deliberately not named
``model.safetensors``, so transformers refuses it instead of loading int8 codes as weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound

INT8_WEIGHTS_FILE = "model.int8.safetensors"
INT8_FORMAT = "largeforge-int8"
INT8_LAYOUT_VERSION = "1"
INT8_SUFFIX, SCALE_SUFFIX = ".int8", ".scale"


def quantize_state(model: Any) -> tuple[dict[str, Any], list[str]]:
    """The int8 tensors of ``model`` in the layout above, and the names of the quantized weights.

    Tied tensors are stored once, under the first name the state dict gives them.
    """
    import torch

    state = model.state_dict()
    owners: dict[tuple[Any, ...], str] = {}
    shared: set[tuple[Any, ...]] = set()
    for name, tensor in state.items():
        if _identity(tensor) in owners:
            shared.add(_identity(tensor))
        else:
            owners[_identity(tensor)] = name
    linear_weights = {
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and _identity(module.weight) not in shared
    }
    tensors: dict[str, Any] = {}
    for name, tensor in state.items():
        if owners[_identity(tensor)] != name:
            continue  # a tied alias; the loader ties it again
        if name in linear_weights:
            codes, scale = quantize_weight(tensor)
            tensors[name + INT8_SUFFIX], tensors[name + SCALE_SUFFIX] = codes, scale
        else:
            tensors[name] = tensor.detach().contiguous().cpu()
    return tensors, sorted(linear_weights)


def _identity(tensor: Any) -> tuple[Any, ...]:
    """Equal for two names of one tensor (tied weights), different for distinct tensors."""
    return (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()))


def quantize_weight(weight: Any) -> tuple[Any, Any]:
    """Symmetric per-output-channel int8: ``weight`` [out, in] → (int8 [out, in], float32 [out])."""
    import torch

    w = weight.detach().float().cpu()
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    codes = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return codes.contiguous(), scale.contiguous()


def save_int8_weights(tensors: dict[str, Any], directory: Path) -> None:
    from safetensors.torch import save_file

    metadata = {"format": INT8_FORMAT, "layout_version": INT8_LAYOUT_VERSION}
    save_file(tensors, str(directory / INT8_WEIGHTS_FILE), metadata=metadata)


def dequantize_state(tensors: dict[str, Any], dtype: Any = None) -> dict[str, Any]:
    """Turn the stored layout back into a plain state dict (``int8 * scale``) in ``dtype`` (float32)."""
    import torch

    dtype = dtype or torch.float32
    state: dict[str, Any] = {}
    for name, tensor in tensors.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if name.endswith(INT8_SUFFIX):
            base = name.removesuffix(INT8_SUFFIX)
            scale_name = base + SCALE_SUFFIX
            if scale_name not in tensors:
                raise InvalidInput(f"int8 weights lack {scale_name!r}; the file is damaged, quantize again")
            state[base] = (tensor.float() * tensors[scale_name][:, None]).to(dtype)
        else:
            state[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return state


def load_int8_model(model_dir: str | Path) -> Any:
    """A transformers causal LM with the int8 weights of ``model_dir`` dequantized into float32.

    Raises:
        NotFound: no such directory or no ``model.int8.safetensors`` in it.
        InvalidInput: the file is not in our format, or its tensors do not fit the config.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    directory = Path(model_dir).expanduser().resolve()
    weights = directory / INT8_WEIGHTS_FILE
    if not weights.exists():
        raise NotFound(f"{weights} does not exist; make it with `largeforge export quantize MODEL OUT_DIR`")
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != INT8_FORMAT or metadata.get("layout_version") != INT8_LAYOUT_VERSION:
        raise InvalidInput(
            f"{weights} is not {INT8_FORMAT} layout {INT8_LAYOUT_VERSION} (metadata {metadata}); quantize again"
        )
    try:
        config = AutoConfig.from_pretrained(str(directory))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the config of {directory}: {exc}") from exc
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = dequantize_state(load_file(str(weights)))
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise InvalidInput(f"the int8 weights in {directory} do not fit its config: {exc}") from exc
    _check_complete(model, set(state), result.missing_keys, result.unexpected_keys, directory)
    return model.eval()


def _check_complete(
    model: Any, loaded: set[str], missing: list[str], unexpected: list[str], where: Path
) -> None:
    """Missing keys are fine only when they alias a loaded tensor (tied embeddings)."""
    identity_of = {name: _identity(t) for name, t in model.state_dict().items()}
    loaded_identities = {identity_of[name] for name in loaded if name in identity_of}
    really_missing = [name for name in missing if identity_of.get(name) not in loaded_identities]
    if really_missing or unexpected:
        raise InvalidInput(
            f"the int8 weights in {where} do not match its config: missing {really_missing[:5]}, "
            f"unexpected {unexpected[:5]}; quantize the model again"
        )


__all__ = [
    "INT8_FORMAT",
    "INT8_LAYOUT_VERSION",
    "INT8_WEIGHTS_FILE",
    "dequantize_state",
    "load_int8_model",
    "quantize_state",
    "quantize_weight",
    "save_int8_weights",
]
