"""Export fixtures: a LoRA adapter with non-zero B on the tiny model, a tiny Llama, and "sharp" models.

The tiny models come out of random init with logits close to zero, so nearly every comparison
passes by accident. The sharp copies have weights with std 0.2: logits spread over several units
and greedy decoding varies, so a wrong q/k permutation or a bad quantizer shows up in the numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NANO_CORPUS, NANO_OVERRIDES, make_sharp_copy


@pytest.fixture(scope="session")
def llama_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset as a Llama (the session's ``tiny_model_dir`` is a Qwen2)."""
    from largeforge.scratch import build_base_model

    path = tmp_path_factory.mktemp("nano-llama") / "model"
    build_base_model(path, architecture="llama", corpus=NANO_CORPUS, vocab_size=300, overrides=NANO_OVERRIDES)
    return path


@pytest.fixture(scope="session")
def model_dirs(tiny_model_dir: Path, llama_model_dir: Path) -> dict[str, Path]:
    return {"qwen2": tiny_model_dir, "llama": llama_model_dir}


@pytest.fixture(scope="session")
def sharp_model_dirs(
    model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Copies of both tiny models with weights ~ N(0, 0.2) (norm weights ~ N(1, 0.1)), seeded."""
    return {
        architecture: make_sharp_copy(source, tmp_path_factory.mktemp(f"sharp-{architecture}") / "model")
        for architecture, source in model_dirs.items()
    }


@pytest.fixture(scope="session")
def lora_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny model laid out like a training run's ``final/`` (adapter + tokenizer).

    ``init_lora_weights=False`` draws B at random instead of zeros, so the adapter changes the model
    without a training run (seconds faster; the training tests already prove training reaches B).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["q_proj", "v_proj", "down_proj"],
            init_lora_weights=False,
            task_type="CAUSAL_LM",
        ),
    )
    path = tmp_path_factory.mktemp("adapter") / "final"
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(path)
    return path


def pickle_only_dir(path: Path, weights: str = "pytorch_model.bin", config: str = "config.json") -> Path:
    """A directory whose only weights are a pickle. The bytes are garbage: loading them would raise
    an unpickling error instead of our refusal, so a test using this proves nothing was loaded."""
    path.mkdir(parents=True)
    (path / config).write_text('{"architectures": ["LlamaForCausalLM"], "peft_type": "LORA"}')
    (path / weights).write_bytes(b"not a pickle, and never to be unpickled")
    return path
