"""Our GGUF files in llama.cpp (llama-cpp-python): same tokens, same logits, same greedy text.

Runs on the sharp models (see conftest): their logits spread over several units, so a wrong q/k
permutation (logits off by ~4) or a wrong pre-tokenizer cannot pass by accident.

Marked ``llamacpp``. Where llama-cpp-python is missing the tests are skipped with a reason, unless
LARGEFORGE_REQUIRE_SERVERS=1 (CI), where a missing package fails the run instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from largeforge.export import write_gguf
from largeforge.export.parity import render_canaries

pytestmark = pytest.mark.llamacpp
GREEDY_TOKENS = 12
LOGIT_TOLERANCE = {"f32": 0.05, "f16": 0.05, "q8_0": 0.5}


@pytest.fixture
def load_gguf(llama_cpp: Any) -> Iterator[Any]:
    opened: list[Any] = []

    def load(path: str) -> Any:
        llm = llama_cpp.Llama(path, n_ctx=256, logits_all=True, n_threads=1, verbose=False)
        opened.append(llm)
        return llm

    yield load
    for llm in opened:  # explicitly: Llama.__del__ at interpreter exit raises inside llama-cpp-python
        llm.close()


def transformers_run(model: Any, ids: list[int]) -> tuple[np.ndarray, list[int]]:
    """Prompt logits [len, vocab] and GREEDY_TOKENS argmax tokens, without a cache."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
        tokens, sequence = [], list(ids)
        for _ in range(GREEDY_TOKENS):
            tokens.append(int(model(torch.tensor([sequence])).logits[0, -1].argmax()))
            sequence.append(tokens[-1])
    return logits, tokens


@pytest.mark.parametrize("architecture", ["qwen2", "llama"])
@pytest.mark.parametrize("gguf_type", ["f32", "f16", "q8_0"])
def test_llama_cpp_matches_transformers(
    architecture: str, gguf_type: str, sharp_model_dirs: dict[str, Path], tmp_path: Path, load_gguf: Any
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = sharp_model_dirs[architecture]
    tokenizer, model = (
        AutoTokenizer.from_pretrained(source),
        AutoModelForCausalLM.from_pretrained(source).eval(),
    )
    llm = load_gguf(write_gguf(source, tmp_path / "m.gguf", type=gguf_type).path)
    agreement, expected_all = [], []
    for ids in render_canaries(tokenizer):
        assert llm.tokenize(tokenizer.decode(ids).encode(), add_bos=False, special=True) == ids
        expected_logits, expected = transformers_run(model, ids)
        expected_all.extend(expected)
        # Teacher-forced on transformers' continuation: one divergent token cannot skew the rest.
        llm.reset()
        llm.eval(ids + expected)
        scores = np.asarray(llm.scores[: len(ids) + len(expected)])
        diff = float(np.abs(scores[: len(ids)] - expected_logits).max())
        assert diff < LOGIT_TOLERANCE[gguf_type], f"max |Δlogit| {diff}"
        agreement.extend(scores[len(ids) - 1 : -1].argmax(axis=1) == np.array(expected))
        if gguf_type != "q8_0":  # free-running greedy generation, token for token
            assert generate(llm, ids) == expected
    assert len(set(expected_all)) > 3, "the model repeats itself; the comparison would be weak"
    assert np.mean(agreement) >= (0.9 if gguf_type == "q8_0" else 1.0)


def generate(llm: Any, ids: list[int]) -> list[int]:
    tokens = []
    for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        tokens.append(int(token))
        if len(tokens) == GREEDY_TOKENS:
            return tokens
    return tokens


def test_llama_cpp_reads_the_chat_template(
    sharp_model_dirs: dict[str, Path], tmp_path: Path, load_gguf: Any
) -> None:
    from transformers import AutoTokenizer

    source = sharp_model_dirs["qwen2"]
    llm = load_gguf(write_gguf(source, tmp_path / "m.gguf").path)
    messages = [{"role": "user", "content": "What is two plus two?"}]
    expected = AutoTokenizer.from_pretrained(source).apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert llm.chat_handler is not None or llm.chat_format is not None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(
        llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token=""
    )
    assert formatter(messages=messages).prompt == expected
    reply = llm.create_chat_completion(messages=messages, max_tokens=4, temperature=0.0)
    assert reply["choices"][0]["message"]["role"] == "assistant"
