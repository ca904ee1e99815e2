"""Synthetic data: conversation or preference rows written by a teacher from seed prompts.

Generation only; which teacher to use and where files go is ``synth_service.py``'s business, and the
teachers themselves live in ``teachers.py``. Rows come out already in the normalised shapes of
``largeforge.data.formats``, so they import without conversion.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from largeforge.atomic import write_text_atomic
from largeforge.data.teachers import EndpointTeacher, LocalTeacher, Teacher
from largeforge.errors import InvalidInput, NotFound
from largeforge.progress import NullProgress, ProgressReporter

JUDGE_INSTRUCTION = (
    "You compare two answers to the same request. Reply with exactly one letter: "
    "A if answer A is better, B if answer B is better."
)
_VERDICT = re.compile(r"\b([AB])\b")


class SynthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["conversation", "preference"] = Field("conversation", description="What to generate.")
    samples_per_prompt: int = Field(1, gt=0, description="Rows (or pairs) generated per seed prompt.")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature of the teacher.")
    max_tokens: int = Field(256, gt=0, description="Longest answer, in tokens.")
    system_prompt: str | None = Field(None, description="System message put before every seed prompt.")
    preference_strategy: Literal["judge", "rejected_model"] = Field(
        "judge",
        description="judge: two teacher samples, a judge picks the better; rejected_model: another model writes the rejected answer.",
    )
    seed: int = Field(0, description="Seed for local sampling.")


@dataclass
class SynthResult:
    rows: list[dict[str, Any]]
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons.append(reason)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": len(self.rows), "skipped": self.skipped, "reasons": self.reasons}


def read_seed_prompts(path: str | Path) -> list[str]:
    """Prompts from ``.txt`` (one per non-blank line) or any dataset file LargeForge reads.

    A dataset row gives its ``prompt`` (a string, or messages) or, failing that, the last user turn
    of its ``messages``; rows with neither are passed over.

    Raises:
        NotFound: no such file.
        InvalidInput: a row cannot be parsed, or the file holds no prompt.
    """
    from largeforge.data.loaders import load_file

    source = Path(path).expanduser()
    if not source.exists():
        raise NotFound(f"seed prompt file {source} does not exist")
    if source.suffix == ".txt":
        prompts = [
            line.strip() for line in source.read_text(encoding="utf-8-sig").splitlines() if line.strip()
        ]
    else:
        loaded = load_file(source)
        if loaded.errors:
            # A seed file is small and hand-made: a broken line is a typo to fix, not noise to drop.
            first = loaded.errors[0]
            where = f"line {first.line}" if first.line is not None else f"row {first.row}"
            raise InvalidInput(
                f"{source}: {len(loaded.errors)} row(s) cannot be read; {where}: {first.problem} ({first.hint})"
            )
        prompts = [p for row in loaded.rows if (p := _row_prompt(row.data))]
    if not prompts:
        raise InvalidInput(f"{source} holds no seed prompts; one per line in .txt, or a 'prompt' column")
    return prompts


def _row_prompt(data: dict[str, Any]) -> str | None:
    """The ``prompt`` column, else the last user turn of a ``messages`` column."""
    return _prompt_text(data.get("prompt")) or _prompt_text(data.get("messages"))


def _prompt_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list):
        users = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        if users and isinstance(users[-1], str) and users[-1].strip():
            return users[-1].strip()
    return None


def synthesize(
    prompts: Sequence[str],
    teacher: Teacher,
    config: SynthConfig,
    *,
    rejected_teacher: Teacher | None = None,
    judge: Teacher | None = None,
    progress: ProgressReporter | None = None,
) -> SynthResult:
    """Generate ``config.samples_per_prompt`` rows per prompt; unusable answers are skipped with a reason.

    Raises:
        InvalidInput: the rejected_model strategy without a ``rejected_teacher``.
    """
    if (
        config.kind == "preference"
        and config.preference_strategy == "rejected_model"
        and rejected_teacher is None
    ):
        raise InvalidInput("the rejected_model strategy needs a rejected teacher (--rejected-model)")
    _seed_local_sampling(config.seed)
    result = SynthResult(rows=[])
    reporter = progress or NullProgress()
    with reporter.task("Generating", total=len(prompts) * config.samples_per_prompt) as task:
        for prompt in prompts:
            messages = (
                [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
            ) + [{"role": "user", "content": prompt}]
            for _ in range(config.samples_per_prompt):
                if config.kind == "conversation":
                    _add_conversation(result, messages, teacher, config)
                else:
                    _add_preference(result, messages, teacher, rejected_teacher, judge or teacher, config)
                task.advance(rows=len(result.rows), skipped=result.skipped)
    return result


def _seed_local_sampling(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _add_conversation(
    result: SynthResult, messages: list[dict[str, str]], teacher: Teacher, config: SynthConfig
) -> None:
    answer = teacher.complete(messages, temperature=config.temperature, max_tokens=config.max_tokens)
    if not answer.strip():
        result.skip(f"empty answer to {messages[-1]['content'][:60]!r}")
        return
    result.rows.append({"messages": [*messages, {"role": "assistant", "content": answer}]})


def _add_preference(
    result: SynthResult,
    messages: list[dict[str, str]],
    teacher: Teacher,
    rejected_teacher: Teacher | None,
    judge: Teacher,
    config: SynthConfig,
) -> None:
    prompt = messages[-1]["content"][:60]
    temperature = max(config.temperature, 0.7)  # two samples must be able to differ
    first = teacher.complete(messages, temperature=temperature, max_tokens=config.max_tokens)
    second_teacher = teacher if config.preference_strategy == "judge" else rejected_teacher
    assert second_teacher is not None  # checked in synthesize()
    second = second_teacher.complete(messages, temperature=temperature, max_tokens=config.max_tokens)
    # Checked before judging: a judge call on an unusable pair is a wasted (possibly paid) request.
    if not first.strip() or not second.strip():
        result.skip(f"an empty answer for {prompt!r}")
        return
    if first.strip() == second.strip():
        result.skip(f"identical answers for {prompt!r}")
        return
    chosen, rejected = first, second
    if config.preference_strategy == "judge":
        verdict = _judge(judge, messages[-1]["content"], first, second)
        if verdict is None:
            result.skip(f"the judge gave no A/B verdict for {prompt!r}")
            return
        if verdict == "B":
            chosen, rejected = second, first
    result.rows.append(
        {
            "prompt": messages,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    )


def _judge(judge: Teacher, request: str, answer_a: str, answer_b: str) -> str | None:
    question = f"Request:\n{request}\n\nAnswer A:\n{answer_a}\n\nAnswer B:\n{answer_b}\n\nWhich answer is better, A or B?"
    reply = judge.complete(
        [{"role": "system", "content": JUDGE_INSTRUCTION}, {"role": "user", "content": question}],
        temperature=0.0,
        max_tokens=4,
    )
    return _parse_verdict(reply)


def _parse_verdict(reply: str) -> str | None:
    """``"A"`` or ``"B"`` from a judge's reply, or None when it names neither.

    A bare letter counts in either case; inside a sentence only a capital counts, so the article in
    "a close call, but B" is not read as a vote for A.
    """
    bare = reply.strip().rstrip(".!").strip().upper()
    if bare in ("A", "B"):
        return bare
    match = _VERDICT.search(reply)
    return match.group(1) if match else None


def save_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as UTF-8 JSON lines, atomically (a crash leaves the old file or none)."""
    target = Path(path)
    write_text_atomic(target, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return target


__all__ = [
    "EndpointTeacher",
    "LocalTeacher",
    "SynthConfig",
    "SynthResult",
    "Teacher",
    "read_seed_prompts",
    "save_rows",
    "synthesize",
]
