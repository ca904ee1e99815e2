"""Next-token selection for a batch of rows, each with its own settings.

Order of operations (the same as OpenAI's and vLLM's): presence/frequency penalties on the model's
logits, then the grammar mask, then greedy or temperature → top-k → min-p → top-p sampling with the
row's own seeded generator (a seed reproduces a completion whatever else is in the batch).
Log-probabilities are reported from the model's raw distribution, before any of that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from largeforge.serving.engine import GenerationRequest, TokenLogprob


@dataclass
class RowState:
    """What sampling needs to remember about one sequence between steps."""

    request: GenerationRequest
    generator: torch.Generator
    output_ids: list[int] = field(default_factory=list)
    constraint: Any = None  # a serving.structured.TokenConstraint, when the request has a grammar


def make_generator(seed: int | None, device: str | torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def sample_next(
    logits: torch.Tensor,
    rows: Sequence[RowState],
    token_text: Callable[[int], str],
) -> list[tuple[int, TokenLogprob | None]]:
    """Pick one token per row of ``logits`` ([B, V]); with its log-probability when the row asked."""
    raw = logits.float()
    wants_logprobs = [row.request.logprobs is not None for row in rows]
    log_probs = torch.log_softmax(raw, dim=-1) if any(wants_logprobs) else None
    scores = raw.clone()
    for index, row in enumerate(rows):
        _apply_penalties(scores[index], row)
    constraints = [row.constraint for row in rows]
    if any(c is not None for c in constraints):
        from largeforge.serving.structured import apply_constraints

        apply_constraints(scores, constraints)
    picked: list[tuple[int, TokenLogprob | None]] = []
    for index, row in enumerate(rows):
        token = _choose(scores[index], row)
        entry = None
        if log_probs is not None and row.request.logprobs is not None:
            entry = _logprob_entry(log_probs[index], token, row.request.logprobs, token_text)
        picked.append((token, entry))
    return picked


def _apply_penalties(scores: torch.Tensor, row: RowState) -> None:
    request = row.request
    if not row.output_ids or (request.presence_penalty == 0 and request.frequency_penalty == 0):
        return
    ids = torch.tensor(row.output_ids, device=scores.device)
    counts = torch.bincount(ids, minlength=scores.numel())[: scores.numel()].to(scores.dtype)
    scores -= request.frequency_penalty * counts + request.presence_penalty * (counts > 0).to(scores.dtype)


def _choose(scores: torch.Tensor, row: RowState) -> int:
    request = row.request
    if request.temperature <= 0:
        return int(torch.argmax(scores))
    scores = scores / request.temperature
    if request.top_k > 0:
        kth = torch.topk(scores, min(request.top_k, scores.numel())).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if request.min_p > 0:
        probs = probs.masked_fill(probs < request.min_p * probs.max(), 0.0)
    if request.top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < request.top_p * ordered.sum()
        probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
    return int(torch.multinomial(probs / probs.sum(), 1, generator=row.generator))


def _logprob_entry(
    log_probs: torch.Tensor, token: int, top: int, token_text: Callable[[int], str]
) -> TokenLogprob:
    alternatives: list[tuple[str, float]] = []
    if top > 0:
        values, ids = torch.topk(log_probs, min(top, log_probs.numel()))
        alternatives = [(token_text(int(i)), float(v)) for v, i in zip(values, ids, strict=True)]
    return TokenLogprob(token_text(token), float(log_probs[token]), alternatives)


__all__ = ["RowState", "make_generator", "sample_next"]
