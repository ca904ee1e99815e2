"""The parity check: does an exported model still compute what its source computed?

Runs a few canary prompts through a reference and a candidate model and compares (1) the logits
at every prompt position and (2) ``max_new_tokens`` greedily generated tokens. Merge uses it with a
strict tolerance (a merged LoRA must be numerically the same model); quantize uses it to report the
drift quantization caused. It owns the comparison only: which models to compare, and what a failure
means, is the caller's business.

The reference is run to completion before the candidate is loaded, so a caller that passes loaders
(zero-argument callables) instead of models only needs one model's activations at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.progress import NullProgress, ProgressReporter

# Short, varied user messages: text, digits, JSON punctuation, a long word. Rendered through the
# tokenizer's chat template, so the canaries exercise the special tokens too.
DEFAULT_CANARY_PROMPTS: tuple[str, ...] = (
    "What is two plus two?",
    "Extract the name and city: Maria Lopez, 34, lives in Lisbon.",
    'Return {"status": "ok"} as JSON.',
    "Write one sentence about the sea.",
)
DEFAULT_GREEDY_TOKENS = 8

ModelOrLoader = Any  # a transformers causal LM, or a zero-argument callable returning one


@dataclass(frozen=True)
class ParityReport:
    """How far a candidate model's outputs are from the reference's, and whether that is acceptable.

    ``max_abs_logit_diff`` is over every prompt position and vocabulary entry (float32).
    ``greedy_agreement`` is the fraction of generated positions where both chose the same token.
    ``passed``: ``max_abs_logit_diff <= tolerance`` and ``greedy_agreement >= min_greedy_agreement``.
    """

    prompts: int
    positions: int
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    greedy_tokens: int
    greedy_match: bool
    greedy_agreement: float
    tolerance: float
    min_greedy_agreement: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"parity {verdict}: max |Δlogit| {self.max_abs_logit_diff:.3g} (tolerance {self.tolerance:g}) "
            f"over {self.positions} positions of {self.prompts} prompts; greedy agreement "
            f"{self.greedy_agreement:.0%} of {self.greedy_tokens} tokens per prompt "
            f"(required {self.min_greedy_agreement:.0%})"
        )


@dataclass(frozen=True)
class _Fingerprint:
    logits: list[Any]  # per prompt: float32 tensor [prompt_length, vocab]
    greedy: list[list[int]]  # per prompt: the greedy continuation


def render_canaries(
    tokenizer: Any, prompts: Sequence[str] | None = None, *, use_chat_template: bool = True
) -> list[list[int]]:
    """Token ids of each canary: a user turn through the chat template (raw text without one).

    Raises:
        InvalidInput: no prompts, or a prompt that tokenizes to nothing.
    """
    texts = list(DEFAULT_CANARY_PROMPTS if prompts is None else prompts)
    if not texts:
        raise InvalidInput("parity needs at least one canary prompt; pass prompts=None for the built-in ones")
    templated = use_chat_template and bool(getattr(tokenizer, "chat_template", None))
    if templated:
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
            for text in texts
        ]
    rendered = [list(tokenizer(text, add_special_tokens=not templated)["input_ids"]) for text in texts]
    for text, ids in zip(texts, rendered, strict=True):
        if not ids:
            raise InvalidInput(f"canary prompt {text!r} tokenizes to no tokens; use a non-empty prompt")
    return rendered


def check_parity(
    reference: ModelOrLoader,
    candidate: ModelOrLoader,
    tokenizer: Any,
    *,
    prompts: Sequence[str] | None = None,
    use_chat_template: bool = True,
    max_new_tokens: int = DEFAULT_GREEDY_TOKENS,
    tolerance: float = 1e-3,
    min_greedy_agreement: float = 1.0,
    progress: ProgressReporter | None = None,
) -> ParityReport:
    """Compare ``candidate`` with ``reference`` on the canary prompts.

    Args:
        reference, candidate: causal LMs (``model(input_ids).logits`` of shape [1, seq, vocab]) or
            zero-argument callables returning one; the candidate is loaded after the reference ran.
            Both are put in eval mode (dropout off), which is how they are compared.
        tokenizer: the tokenizer both models share.
        prompts: user messages to use instead of the built-in canaries.
        max_new_tokens: greedy tokens generated per prompt (no early stop at EOS, so every prompt
            compares the same number of tokens).
        tolerance: the largest acceptable absolute logit difference.
        min_greedy_agreement: the smallest acceptable fraction of equal greedy tokens.

    Raises:
        InvalidInput: bad arguments, or the two models have different vocabulary sizes.
    """
    if tolerance < 0 or max_new_tokens < 0 or not 0.0 <= min_greedy_agreement <= 1.0:
        raise InvalidInput(
            "parity needs tolerance >= 0, max_new_tokens >= 0 and 0 <= min_greedy_agreement <= 1; got "
            f"{tolerance}, {max_new_tokens}, {min_greedy_agreement}"
        )
    canaries = render_canaries(tokenizer, prompts, use_chat_template=use_chat_template)
    with (progress or NullProgress()).task("Parity check", total=2 * len(canaries)) as task:
        expected = _fingerprint(_materialise(reference), canaries, max_new_tokens, task)
        actual = _fingerprint(_materialise(candidate), canaries, max_new_tokens, task)
    return _compare(expected, actual, max_new_tokens, tolerance, min_greedy_agreement)


def _materialise(model: ModelOrLoader) -> Any:
    import torch

    if isinstance(model, torch.nn.Module):
        return model
    if callable(model):
        return model()
    raise InvalidInput(f"parity needs a model or a loader function, got {type(model).__name__}")


def _fingerprint(model: Any, canaries: list[list[int]], max_new_tokens: int, task: Any) -> _Fingerprint:
    """Prompt logits and greedy continuations; a fresh full forward per token (no cache to get wrong)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    logits, greedy = [], []
    with torch.inference_mode():
        for ids in canaries:
            tokens = torch.tensor([ids], device=device)
            prompt_logits = model(input_ids=tokens, use_cache=False).logits[0].float().cpu()
            generated: list[int] = []
            next_logits = prompt_logits[-1]
            for step in range(max_new_tokens):
                generated.append(int(next_logits.argmax()))
                if step + 1 < max_new_tokens:
                    tokens = torch.cat([tokens, torch.tensor([[generated[-1]]], device=device)], dim=1)
                    next_logits = model(input_ids=tokens, use_cache=False).logits[0, -1].float().cpu()
            logits.append(prompt_logits)
            greedy.append(generated)
            task.advance()
    return _Fingerprint(logits=logits, greedy=greedy)


def _compare(
    expected: _Fingerprint,
    actual: _Fingerprint,
    max_new_tokens: int,
    tolerance: float,
    min_greedy_agreement: float,
) -> ParityReport:
    max_diff, total_diff, positions = 0.0, 0.0, 0
    for ref, cand in zip(expected.logits, actual.logits, strict=True):
        if ref.shape != cand.shape:
            raise InvalidInput(
                f"the models disagree on the vocabulary size ({ref.shape[-1]} vs {cand.shape[-1]}); "
                "parity compares models that share one tokenizer"
            )
        diff = (ref - cand).abs()
        worst = float(diff.max())
        # NaN compares false with everything: without this a model that outputs NaN would pass.
        max_diff = max(max_diff, worst if math.isfinite(worst) else math.inf)
        total_diff += float(diff.mean()) * ref.shape[0] if math.isfinite(worst) else math.inf
        positions += ref.shape[0]
    pairs = [
        (a, b)
        for ref, cand in zip(expected.greedy, actual.greedy, strict=True)
        for a, b in zip(ref, cand, strict=True)
    ]
    agreement = sum(a == b for a, b in pairs) / len(pairs) if pairs else 1.0
    return ParityReport(
        prompts=len(expected.logits),
        positions=positions,
        max_abs_logit_diff=max_diff,
        mean_abs_logit_diff=total_diff / positions,
        greedy_tokens=max_new_tokens,
        greedy_match=expected.greedy == actual.greedy,
        greedy_agreement=agreement,
        tolerance=tolerance,
        min_greedy_agreement=min_greedy_agreement,
        passed=max_diff <= tolerance and agreement >= min_greedy_agreement,
    )


__all__ = [
    "DEFAULT_CANARY_PROMPTS",
    "DEFAULT_GREEDY_TOKENS",
    "ModelOrLoader",
    "ParityReport",
    "check_parity",
    "render_canaries",
]
