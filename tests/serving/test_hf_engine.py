"""The continuous-batching engine in-process: batching equals one-at-a-time, slots, adapters, cancel."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from largeforge.errors import Conflict, InvalidInput, NotFound, Overloaded
from largeforge.serving.engine import GenerationRequest
from largeforge.serving.engines.hf import HFEngine

PROMPTS = [
    "Maria Lopez, 34, lives in Lisbon.",
    "a",
    "the cat sat on the mat and then it went to sleep on the warm floor of the kitchen",
    "one two three",
    "Kenji Sato is 41 and lives in Osaka; he likes tea.",
]


def ids_of(model_dir: Path, text: str) -> list[int]:
    return list(AutoTokenizer.from_pretrained(model_dir)(text, add_special_tokens=False)["input_ids"])


def greedy_reference(model: Any, prompt: list[int], tokens: int) -> list[int]:
    """Argmax of a full forward pass per token: what ``ignore_eos`` greedy decoding must produce
    (``generate`` would stop at EOS, and ``min_new_tokens`` would change the distribution)."""
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(tokens):
            ids.append(int(torch.argmax(model(torch.tensor([ids])).logits[0, -1])))
    return ids[len(prompt) :]


async def collect(engine: HFEngine, request: GenerationRequest) -> list[int]:
    tokens: list[int] = []
    async for chunk in engine.generate(request):
        tokens += chunk.token_ids
    return tokens


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_concurrent_greedy_requests_equal_generate_with_chunked_prefill_and_few_slots(
    sharp_model: Path,
) -> None:
    # 3 slots for 10 requests: admission queues, slots are reused and compacted; prefill is chunked
    # into 8-token pieces, so long prompts take several iterations while others decode.
    model = AutoModelForCausalLM.from_pretrained(sharp_model).eval()
    prompts = [ids_of(sharp_model, p) for p in PROMPTS] * 2
    lengths = [5 + 3 * i for i in range(len(prompts))]

    async def main() -> list[list[int]]:
        engine = HFEngine(str(sharp_model), max_num_seqs=3, prefill_tokens=8)
        try:
            assert engine.slots == 3
            return await asyncio.gather(
                *(
                    collect(engine, GenerationRequest(p, n, temperature=0, ignore_eos=True))
                    for p, n in zip(prompts, lengths, strict=True)
                )
            )
        finally:
            await engine.aclose()

    outputs = run(main())
    for prompt, length, output in zip(prompts, lengths, outputs, strict=True):
        assert output == greedy_reference(model, prompt, length)


def test_adapters_in_one_batch_each_answer_as_alone(sharp_model: Path, adapters: dict[str, Path]) -> None:
    from peft import PeftModel

    prompt = ids_of(sharp_model, PROMPTS[0])
    expected = {}
    for name, path in adapters.items():
        alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sharp_model), path).eval()
        expected[name] = greedy_reference(alone, prompt, 12)
    expected[None] = greedy_reference(AutoModelForCausalLM.from_pretrained(sharp_model).eval(), prompt, 12)
    assert len({tuple(v) for v in expected.values()}) == 3, "the adapters must change the answer"

    async def main() -> dict[Any, list[int]]:
        engine = HFEngine(str(sharp_model), {k: str(v) for k, v in adapters.items()})
        try:
            assert engine._multi is not None, "plain LoRA adapters take the concatenated fast path"
            names = [None, "alpha", "beta", "alpha", None, "beta"]
            outs = await asyncio.gather(
                *(
                    collect(engine, GenerationRequest(prompt, 12, temperature=0, adapter=n, ignore_eos=True))
                    for n in names
                )
            )
            for name, out in zip(names, outs, strict=True):
                assert out == expected[name], name
            return dict(zip(names, outs, strict=True))
        finally:
            await engine.aclose()

    run(main())


def test_cancelling_a_stream_frees_its_slot_at_once(sharp_model: Path) -> None:
    async def main() -> None:
        engine = HFEngine(str(sharp_model), max_num_seqs=1)
        try:
            prompt = ids_of(sharp_model, PROMPTS[0])
            stream = engine.generate(GenerationRequest(prompt, 200, temperature=0, ignore_eos=True))
            got = 0
            async for chunk in stream:
                got += len(chunk.token_ids)
                if got >= 2:
                    break
            await stream.aclose()  # type: ignore[attr-defined]
            # The only slot is free again: a new request runs to its end.
            assert (
                len(await collect(engine, GenerationRequest(prompt, 4, temperature=0, ignore_eos=True))) == 4
            )
            assert engine.stats().running == 0
        finally:
            await engine.aclose()

    run(main())


def test_admission_control_and_errors(sharp_model: Path, adapters: dict[str, Path]) -> None:
    async def main() -> None:
        engine = HFEngine(str(sharp_model), {"alpha": str(adapters["alpha"])}, max_num_seqs=1, max_waiting=1)
        try:
            prompt = ids_of(sharp_model, PROMPTS[0])
            long = GenerationRequest(prompt, 150, temperature=0, ignore_eos=True)
            first = engine.generate(long)
            await anext(first)  # type: ignore[call-overload]  # running in the only slot
            second = engine.generate(long)  # takes the only waiting place
            with pytest.raises(Overloaded) as full:
                engine.generate(long)
            assert full.value.retry_after > 0
            stats = engine.stats()
            assert stats.waiting + stats.running == 2
            with pytest.raises(NotFound):
                engine.generate(GenerationRequest(prompt, 4, adapter="nope"))
            with pytest.raises(InvalidInput, match="context length is 256"):
                engine.generate(GenerationRequest(prompt, 1000))
            for stream in (first, second):
                await stream.aclose()  # type: ignore[attr-defined]
        finally:
            await engine.aclose()

    run(main())


def test_adapters_load_and_unload_at_run_time(sharp_model: Path, adapters: dict[str, Path]) -> None:
    prompt = ids_of(sharp_model, PROMPTS[3])

    async def main() -> None:
        engine = HFEngine(str(sharp_model))
        try:
            base = await collect(engine, GenerationRequest(prompt, 8, temperature=0, ignore_eos=True))
            await engine.load_adapter("alpha", str(adapters["alpha"]))
            assert engine.model_ids()[1:] == ["alpha"]
            with pytest.raises(Conflict):
                await engine.load_adapter("alpha", str(adapters["alpha"]))
            tuned = await collect(
                engine, GenerationRequest(prompt, 8, temperature=0, adapter="alpha", ignore_eos=True)
            )
            assert tuned != base
            busy = engine.generate(
                GenerationRequest(prompt, 200, temperature=0, adapter="alpha", ignore_eos=True)
            )
            await anext(busy)  # type: ignore[call-overload]
            with pytest.raises(Conflict, match="in flight"):
                await engine.unload_adapter("alpha")
            await busy.aclose()  # type: ignore[attr-defined]
            await asyncio.sleep(0.2)
            await engine.unload_adapter("alpha")
            assert engine.model_ids() == [sharp_model.name]
            with pytest.raises(NotFound):
                await engine.unload_adapter("alpha")
            assert await collect(engine, GenerationRequest(prompt, 8, temperature=0, ignore_eos=True)) == base
        finally:
            await engine.aclose()

    run(main())


def test_bfloat16_engine_generates(sharp_model: Path) -> None:
    async def main() -> list[int]:
        engine = HFEngine(str(sharp_model), dtype="bfloat16")
        try:
            assert engine.dtype == torch.bfloat16
            return await collect(
                engine, GenerationRequest(ids_of(sharp_model, PROMPTS[0]), 6, temperature=0, ignore_eos=True)
            )
        finally:
            await engine.aclose()

    assert len(run(main())) == 6
    with pytest.raises(InvalidInput, match="unknown dtype"):
        HFEngine(str(sharp_model), dtype="float8")


def test_penalties_cut_repetition(sharp_model: Path) -> None:
    prompt = ids_of(sharp_model, PROMPTS[2])

    async def main(**penalty: float) -> list[int]:
        engine = HFEngine(str(sharp_model))
        try:
            return await collect(
                engine, GenerationRequest(prompt, 40, temperature=0, ignore_eos=True, **penalty)
            )
        finally:
            await engine.aclose()

    def most_repeated(tokens: list[int]) -> int:
        return max(tokens.count(t) for t in tokens)

    greedy = run(main())
    assert most_repeated(greedy) > 2, "the sharp model repeats itself when greedy"
    assert most_repeated(run(main(frequency_penalty=2.0))) < most_repeated(greedy)
    assert len(set(run(main(presence_penalty=2.0)))) > len(set(greedy))
