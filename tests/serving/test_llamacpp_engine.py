"""The llamacpp engine on a GGUF exported from the sharp tiny model: equal to llama.cpp's own greedy
decoding, close to transformers, and every request field doing what it says.

Where llama-cpp-python is missing the tests are skipped with a reason, unless
LARGEFORGE_REQUIRE_SERVERS=1 (CI), where a missing package fails the run instead of hiding it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from largeforge.errors import InvalidInput, NotFound, Overloaded, Unavailable
from largeforge.export import write_gguf
from largeforge.export.gguf import gguf_tensor_name
from largeforge.serving.engine import GenerationChunk, GenerationRequest, Grammar
from tests.serving.conftest import make_adapter

pytestmark = pytest.mark.llamacpp

MESSAGES = [{"role": "user", "content": "What is two plus two?"}]


@pytest.fixture(scope="module")
def gguf_file(llama_cpp: Any, sharp_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # f32: llama.cpp then computes what transformers computes, up to float summation order.
    return Path(write_gguf(sharp_model, tmp_path_factory.mktemp("gguf") / "sharp.gguf", type="f32").path)


@pytest.fixture(scope="module")
def engine(gguf_file: Path) -> Iterator[Any]:
    from largeforge.serving.engines import create_engine

    built = create_engine("llamacpp", str(gguf_file), {}, n_threads=1)
    yield built
    asyncio.run(built.aclose())


@pytest.fixture(scope="module")
def prompt(engine: Any) -> list[int]:
    encoded = engine.tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)
    return list(encoded["input_ids"])


def run(engine: Any, request: GenerationRequest) -> list[GenerationChunk]:
    async def collect() -> list[GenerationChunk]:
        return [chunk async for chunk in engine.generate(request)]

    return asyncio.run(collect())


def tokens_of(chunks: list[GenerationChunk]) -> list[int]:
    return [token for chunk in chunks for token in chunk.token_ids]


def text_of(chunks: list[GenerationChunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


def test_tokenizer_from_the_gguf_equals_llama_cpp_and_the_source(
    engine: Any, prompt: list[int], sharp_model: Path, gguf_file: Path, llama_cpp: Any
) -> None:
    from transformers import AutoTokenizer

    source = AutoTokenizer.from_pretrained(sharp_model)
    expected = source.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert prompt == list(expected)
    text = "Maria Lopez, 34, lives in Lisbon. 🙂\n\n  end"
    llm = llama_cpp.Llama(str(gguf_file), n_ctx=64, vocab_only=True, verbose=False)
    try:
        assert engine.tokenizer(text, add_special_tokens=False)["input_ids"] == llm.tokenize(
            text.encode(), add_bos=False, special=True
        )
    finally:
        llm.close()
    assert engine.tokenizer.decode(prompt) == source.decode(prompt)


def test_greedy_equals_llama_cpp_itself(
    engine: Any, prompt: list[int], gguf_file: Path, llama_cpp: Any
) -> None:
    llm = llama_cpp.Llama(str(gguf_file), n_ctx=256, n_threads=1, verbose=False)
    try:
        for ids in (prompt, prompt[:5]):
            ours = tokens_of(run(engine, GenerationRequest(prompt_ids=ids, max_tokens=24, temperature=0.0)))
            # Llama.generate is the token loop under create_completion; temp=0 is its greedy sampler.
            theirs = []
            for token in llm.generate(ids, temp=0.0, repeat_penalty=1.0):
                theirs.append(token)
                if len(theirs) == 24 or llm.token_eos() == token:
                    break
            assert ours == theirs
            completion = llm.create_completion(ids, max_tokens=24, temperature=0.0, repeat_penalty=1.0)
            # create_completion drops bytes that are not UTF-8 yet, and may run a few tokens past
            # max_tokens to finish a character: our text is a prefix of its text.
            text = llm.detokenize(ours).decode("utf-8", errors="ignore")
            assert completion["choices"][0]["text"].startswith(text) and len(text) > 5
    finally:
        llm.close()


def test_greedy_tracks_transformers(engine: Any, prompt: list[int], sharp_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(sharp_model).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=None)
    expected = out[0, len(prompt) :].tolist()
    ours = tokens_of(run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=12, temperature=0.0)))
    # f32 in both, but summation order differs: a near-tie late in a random model may flip; the first
    # eight tokens are far from ties on this model and must agree.
    assert ours[:8] == expected[:8]


def test_logprobs_are_the_models_log_softmax(engine: Any, prompt: list[int], sharp_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(sharp_model).eval()
    with torch.no_grad():
        reference = torch.log_softmax(model(torch.tensor([prompt])).logits[0, -1], dim=-1)
    chunks = run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=3, temperature=0.0, logprobs=3))
    first = chunks[0].logprobs
    assert first is not None and len(first) == len(chunks[0].token_ids) == 1
    entry, token = first[0], chunks[0].token_ids[0]
    assert entry.logprob == pytest.approx(float(reference[token]), abs=1e-3)
    assert [value for _, value in entry.top] == pytest.approx(reference.topk(3).values.tolist(), abs=1e-3)
    assert entry.top[0][1] == entry.logprob  # greedy: the sampled token is the most likely one
    assert entry.token == engine.tokenizer.decode([token])
    assert (
        run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=2, temperature=0.0))[0].logprobs is None
    )


def test_seed_reproduces_sampling(engine: Any, prompt: list[int]) -> None:
    def sample(seed: int) -> list[int]:
        request = GenerationRequest(prompt_ids=prompt, max_tokens=16, temperature=1.0, seed=seed)
        return tokens_of(run(engine, request))

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_top_k_one_and_min_p_one_are_greedy(engine: Any, prompt: list[int]) -> None:
    greedy = tokens_of(run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=12, temperature=0.0)))
    for options in ({"top_k": 1}, {"min_p": 1.0}, {"top_p": 1e-6}):
        request = GenerationRequest(prompt_ids=prompt, max_tokens=12, temperature=1.5, seed=1, **options)
        assert tokens_of(run(engine, request)) == greedy, options
    wild = GenerationRequest(prompt_ids=prompt, max_tokens=12, temperature=1.5, seed=1)
    assert tokens_of(run(engine, wild)) != greedy


def test_penalties_discourage_repeats(engine: Any, prompt: list[int]) -> None:
    def most_repeated(**penalties: float) -> int:
        request = GenerationRequest(prompt_ids=prompt, max_tokens=40, temperature=0.0, **penalties)
        tokens = tokens_of(run(engine, request))
        return max(tokens.count(t) for t in set(tokens))

    plain = most_repeated()
    assert plain > 3  # the sharp model loops when greedy: the penalties have something to do
    assert most_repeated(frequency_penalty=2.0) < plain
    assert most_repeated(presence_penalty=2.0) < plain


def test_stop_string_is_cut_and_never_streamed(engine: Any, prompt: list[int]) -> None:
    request = GenerationRequest(prompt_ids=prompt, max_tokens=40, temperature=0.0)
    full = text_of(run(engine, request))
    clean = full.replace("\ufffd", "")
    stop = next(clean[i : i + 2] for i in range(3, len(clean) - 2) if clean[i : i + 2].isprintable())
    chunks = run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=40, temperature=0.0, stop=(stop,)))
    assert text_of(chunks) == full[: full.index(stop)]
    assert chunks[-1].finish_reason == "stop"
    assert all(stop not in chunk.text for chunk in chunks)


def test_max_tokens_ends_with_length(engine: Any, prompt: list[int]) -> None:
    chunks = run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=5, temperature=0.0))
    assert len(tokens_of(chunks)) == 5
    assert chunks[-1].finish_reason == "length"
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)


def test_grammar_constrains_the_output(engine: Any, prompt: list[int]) -> None:
    grammar = Grammar('start: "{" NAME ":" AGE "}"\nNAME: /[a-z]{2,8}/\nAGE: /[0-9]{1,3}/')
    for seed in (1, 2):
        request = GenerationRequest(
            prompt_ids=prompt, max_tokens=30, temperature=1.0, seed=seed, grammar=grammar
        )
        chunks = run(engine, request)
        assert re.fullmatch(r"\{[a-z]{2,8}:[0-9]{1,3}\}", text_of(chunks))
        assert chunks[-1].finish_reason == "stop"


def test_bad_grammar_is_invalid_input(engine: Any, prompt: list[int]) -> None:
    request = GenerationRequest(prompt_ids=prompt, max_tokens=5, grammar=Grammar("start: undefined_rule"))
    with pytest.raises(InvalidInput, match="grammar"):
        run(engine, request)


def test_closing_the_stream_cancels_and_frees_the_engine(engine: Any, prompt: list[int]) -> None:
    async def first_then_close() -> GenerationChunk:
        stream = engine.generate(GenerationRequest(prompt_ids=prompt, max_tokens=200, temperature=0.0))
        first = await stream.__anext__()
        await stream.aclose()
        return first

    first = asyncio.run(first_then_close())
    assert first.finish_reason is None
    assert engine.stats().running == 0 and engine.stats().waiting == 0
    # The KV cache now holds the prompt plus far fewer than 200 tokens.
    assert engine.stats().kv_cache_usage < (len(prompt) + 100) / engine.context_length
    assert run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=2, temperature=0.0))[-1].finish_reason


def test_queue_is_counted_and_bounded(gguf_file: Path, prompt: list[int]) -> None:
    from largeforge.serving.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(str(gguf_file), n_threads=1, max_waiting=1)
    request = GenerationRequest(prompt_ids=prompt, max_tokens=3, temperature=0.0)

    async def scenario() -> list[list[GenerationChunk]]:
        async def collect() -> list[GenerationChunk]:
            return [chunk async for chunk in engine.generate(request)]

        engine._lock.acquire()  # the worker is busy: the first request blocks on it, the second queues
        first = asyncio.create_task(collect())
        second = asyncio.create_task(collect())
        while engine.stats().waiting != 1:
            await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):
            await collect()
        engine._lock.release()
        return [await first, await second]

    try:
        results = asyncio.run(scenario())
    finally:
        asyncio.run(engine.aclose())
    assert tokens_of(results[0]) == tokens_of(results[1]) and len(tokens_of(results[0])) == 3
    assert engine.stats().waiting == 0


def test_closed_engine_is_unavailable(gguf_file: Path, prompt: list[int]) -> None:
    from largeforge.serving.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(str(gguf_file), n_threads=1)
    asyncio.run(engine.aclose())
    with pytest.raises(Unavailable):
        asyncio.run(engine.check_health())
    with pytest.raises(Unavailable):
        run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=2))


def test_request_errors(engine: Any, prompt: list[int]) -> None:
    with pytest.raises(NotFound, match="nope"):
        run(engine, GenerationRequest(prompt_ids=prompt, max_tokens=2, adapter="nope"))
    with pytest.raises(InvalidInput, match="256"):
        run(engine, GenerationRequest(prompt_ids=[5] * 300, max_tokens=2))
    with pytest.raises(InvalidInput, match="empty"):
        run(engine, GenerationRequest(prompt_ids=[], max_tokens=2))


def test_model_must_be_a_gguf(sharp_model: Path, llama_cpp: Any) -> None:
    from largeforge.serving.engines.llamacpp import LlamaCppEngine

    with pytest.raises(InvalidInput, match="export gguf"):
        LlamaCppEngine(str(sharp_model))
    with pytest.raises(NotFound):
        LlamaCppEngine(str(sharp_model / "missing.gguf"))


def test_runtime_adapters_point_to_the_hf_engine(engine: Any, adapters: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput, match="hf engine"):
        asyncio.run(engine.load_adapter("alpha", str(adapters["alpha"])))
    with pytest.raises(InvalidInput, match="hf engine"):
        asyncio.run(engine.unload_adapter("alpha"))


def test_peft_adapter_is_refused_with_a_hint(gguf_file: Path, adapters: dict[str, Path]) -> None:
    from largeforge.serving.engines.llamacpp import LlamaCppEngine

    with pytest.raises(InvalidInput, match="GGUF LoRA"):
        LlamaCppEngine(str(gguf_file), {"alpha": str(adapters["alpha"])})


def write_gguf_lora(adapter_dir: Path, out: Path, architecture: str) -> Path:
    """A PEFT LoRA as llama.cpp's convert_lora_to_gguf.py writes it (Qwen2: no q/k permutation).

    lora_A [r, in] and lora_B [out, r] go in as they are; llama.cpp scales B·A by alpha / r.
    """
    import json

    import gguf
    from safetensors.torch import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    writer = gguf.GGUFWriter(str(out), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(config["lora_alpha"]))
    for key, tensor in sorted(load_file(adapter_dir / "adapter_model.safetensors").items()):
        match = re.fullmatch(r"base_model\.model\.(.+)\.lora_([AB])\.weight", key)
        assert match, key
        name = gguf_tensor_name(f"{match[1]}.weight")
        assert name is not None, key
        writer.add_tensor(f"{name}.lora_{match[2].lower()}", tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def test_gguf_lora_adapter_is_served_by_name(
    gguf_file: Path, sharp_model: Path, prompt: list[int], tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from largeforge.serving.engines.llamacpp import LlamaCppEngine

    peft_dir = make_adapter(sharp_model, tmp_path / "peft", seed=3)
    lora = write_gguf_lora(peft_dir, tmp_path / "lora.gguf", "qwen2")
    base = AutoModelForCausalLM.from_pretrained(sharp_model).eval()
    tuned = PeftModel.from_pretrained(base, peft_dir).eval()
    with torch.no_grad():
        out = tuned.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False, eos_token_id=None)
    expected = out[0, len(prompt) :].tolist()

    engine = LlamaCppEngine(str(gguf_file), {"tuned": str(lora)}, n_threads=1, served_name="base")
    try:
        assert engine.model_ids() == ["base", "tuned"]
        greedy = GenerationRequest(prompt_ids=prompt, max_tokens=8, temperature=0.0)
        base_tokens = tokens_of(run(engine, greedy))
        tuned_tokens = tokens_of(run(engine, GenerationRequest(**{**greedy.__dict__, "adapter": "tuned"})))
        again_base = tokens_of(run(engine, greedy))  # switching back drops the adapter (and its KV cache)
    finally:
        asyncio.run(engine.aclose())
    assert tuned_tokens[:6] == expected[:6]
    assert tuned_tokens != base_tokens
    assert again_base == base_tokens


def test_concurrent_streams_each_equal_their_solo_run(engine: Any, prompt: list[int]) -> None:
    """Two streams at once are decoded one after the other; the shared KV cache must not leak between them."""
    prompts = [prompt, prompt[:6]]

    def greedy(ids: list[int]) -> GenerationRequest:
        return GenerationRequest(prompt_ids=ids, max_tokens=10, temperature=0.0)

    solo = [tokens_of(run(engine, greedy(ids))) for ids in prompts]

    async def both() -> list[list[GenerationChunk]]:
        async def collect(ids: list[int]) -> list[GenerationChunk]:
            return [c async for c in engine.generate(greedy(ids))]

        return list(await asyncio.gather(*(collect(ids) for ids in prompts)))

    assert [tokens_of(chunks) for chunks in asyncio.run(both())] == solo
    assert solo[0] != solo[1]
