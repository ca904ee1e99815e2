"""Corpus metrics: BLEU and ROUGE of completions against references, and perplexity on a dataset.

BLEU and ROUGE come from maintained libraries (``sacrebleu``, Google's ``rouge-score``; install
``largeforge[eval]``) rather than our own n-gram counting: their numbers are the ones papers report.
``bleu`` keeps sacrebleu's 0-100 scale; ``rouge1``/``rouge2``/``rougeL`` are mean F-measures in [0, 1].

Perplexity is exp(mean negative log-likelihood per scored token), computed in-process with
transformers. Text rows score every token after the first; conversations score only the assistant's
tokens (the chat template's ``{% generation %}`` mask, the same one assistant-only training uses), so
the number measures the answers, not how predictable the prompts are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, Unavailable
from largeforge.progress import NullProgress, ProgressReporter

PERPLEXITY_KINDS = ("text", "conversation")


def _reference_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenisation, exponential smoothing off), 0-100."""
    try:
        import sacrebleu
    except ImportError as exc:
        raise Unavailable("the bleu metric needs sacrebleu: pip install 'largeforge[eval]'") from exc
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measures (Porter stemming, as in the ROUGE paper's common setting)."""
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise Unavailable("the rouge metric needs rouge-score: pip install 'largeforge[eval]'") from exc
    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    totals = dict.fromkeys(kinds, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)
        for kind in kinds:
            totals[kind] += scores[kind].fmeasure
    return {kind: total / len(predictions) for kind, total in totals.items()}


def text_metrics(
    names: Sequence[str], predictions: Sequence[str], references: Sequence[Any]
) -> dict[str, Any]:
    """The requested corpus metrics (``bleu``, ``rouge``) over the cases that have a reference.

    Returns ``None`` values when no case has a reference (nothing to compare with).

    Raises:
        Unavailable: the metric's library is not installed.
    """
    texts = [_reference_text(r) for r in references]
    result: dict[str, Any] = {}
    for name in names:
        if name == "bleu":
            result["bleu"] = bleu(predictions, texts) if texts else None
        elif name == "rouge":
            result.update(
                rouge(predictions, texts) if texts else dict.fromkeys(("rouge1", "rouge2", "rougeL"))
            )
    return result


@dataclass(frozen=True)
class PerplexityResult:
    target: str
    dataset: str
    kind: str
    rows: int
    tokens: int
    mean_nll: float
    perplexity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row_tokens(row: dict[str, Any], kind: str, tokenizer: Any) -> tuple[list[int], list[bool]]:
    """Token ids of a row and, per token, whether its prediction is scored."""
    if kind == "text":
        ids = list(tokenizer(row["text"])["input_ids"])
        return ids, [True] * len(ids)
    encoded = tokenizer.apply_chat_template(
        row["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = list(encoded["input_ids"])
    return ids, [bool(m) for m in encoded["assistant_masks"]]


def _load_model(path: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from largeforge.model_source import load_tokenizer

    tokenizer = load_tokenizer(path)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"cannot load model {path}: {exc}") from exc
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer


def perplexity(
    model_path: str,
    rows: Sequence[dict[str, Any]],
    kind: str,
    *,
    max_length: int = 1024,
    label: str | None = None,
    dataset: str = "",
    progress: ProgressReporter | None = None,
) -> PerplexityResult:
    """Perplexity of the model at ``model_path`` (a model or adapter directory) on normalised rows.

    Rows are scored one at a time (no padding, so the number does not depend on a batch size) and
    truncated to ``max_length`` tokens.

    Raises:
        InvalidInput: a kind other than text or conversation, a chat template without generation
            markers (no assistant mask), or no token to score.
    """
    import torch

    from largeforge.data.preview import has_generation_markers

    if kind not in PERPLEXITY_KINDS:
        raise InvalidInput(
            f"perplexity needs text or conversation data; {dataset or 'the dataset'} is {kind}"
        )
    model, tokenizer = _load_model(model_path)
    if kind == "conversation" and not has_generation_markers(tokenizer):
        raise InvalidInput(
            f"the chat template of {model_path} has no {{% generation %}} markers, so assistant tokens "
            "cannot be told apart; add the markers (templates from `largeforge model init` have them)"
        )
    total_nll, total_tokens = 0.0, 0
    with (progress or NullProgress()).task("Perplexity", total=len(rows)) as task, torch.inference_mode():
        for row in rows:
            ids, scored = _row_tokens(row, kind, tokenizer)
            ids, scored = ids[:max_length], scored[:max_length]
            # Token i is predicted from tokens < i: the first token is never scored.
            targets = torch.tensor(ids[1:], device=model.device)
            keep = torch.tensor(scored[1:], device=model.device, dtype=torch.bool)
            if len(ids) < 2 or not bool(keep.any()):
                task.advance()
                continue
            logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0, :-1].float()
            total_nll += float(
                torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum")
            )
            total_tokens += int(keep.sum())
            task.advance(perplexity=math.exp(total_nll / total_tokens))
    if total_tokens == 0:
        raise InvalidInput(f"{dataset or 'the dataset'} has no token to score (empty rows or answers)")
    mean_nll = total_nll / total_tokens
    return PerplexityResult(
        label or model_path, dataset, kind, len(rows), total_tokens, mean_nll, math.exp(mean_nll)
    )


def dataset_perplexity(
    model_path: str, dataset: str, *, label: str | None = None, max_length: int = 1024, progress: Any = None
) -> PerplexityResult:
    """Perplexity on a dataset file or stored dataset version (see :func:`perplexity`)."""
    from largeforge.evaluation.cases import read_dataset_rows

    kind, rows = read_dataset_rows(dataset, [])
    return perplexity(
        model_path,
        rows,
        kind,
        max_length=max_length,
        label=label,
        dataset=str(Path(dataset)),
        progress=progress,
    )


__all__ = [
    "PERPLEXITY_KINDS",
    "PerplexityResult",
    "bleu",
    "dataset_perplexity",
    "perplexity",
    "rouge",
    "text_metrics",
]
