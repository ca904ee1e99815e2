"""The ``judge`` check: another language model grades a completion against a rubric.

Owns the grading prompt, reading a score out of whatever the judge replies, and normalising it to
[0, 1]. It does not own talking to models: the judge is a :class:`largeforge.data.teachers.Teacher`
(an OpenAI-compatible endpoint, or a local model directory run in-process), the same classes that
write synthetic data, so there is one way to call a model.

A reply without a readable score scores 0.0 (a judge that cannot grade must not pass anything) and is
logged with the reply, so a misbehaving judge is visible rather than silently lowering pass rates.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from largeforge.checks.builtin import CheckFn
from largeforge.checks.specs import JudgeCheckConfig

if TYPE_CHECKING:
    from largeforge.data.teachers import Teacher

logger = logging.getLogger(__name__)

JUDGE_SYSTEM_PROMPT = (
    "You are a strict, fair grader. Read the rubric, then grade the answer against it. "
    "Think briefly if you must, then end with one line of the form 'Score: N'."
)
_NUMBER = r"(-?\d+(?:\.\d+)?)"
# Tried in order; the first that yields a number on the scale wins.
_EXPLICIT = (
    re.compile(rf"score\W{{0,3}}(?:is|of|=|:)?\s*\**\s*{_NUMBER}", re.IGNORECASE),
    re.compile(rf"{_NUMBER}\s*(?:/|out of)\s*\d+", re.IGNORECASE),
)
_BARE = re.compile(rf"(?<![\w.]){_NUMBER}(?!\w|\.\d)")


def _as_text(value: Any) -> str:
    """A prompt column as the judge reads it: plain text, or a conversation as ``role: content`` lines."""
    if isinstance(value, list) and all(isinstance(m, Mapping) for m in value):
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def judge_messages(config: JudgeCheckConfig, completion: str, row: Mapping[str, Any]) -> list[dict[str, str]]:
    """The conversation sent to the judge: rubric, question (if the row has one), reference, answer."""
    low, high = config.scale
    parts = [f"Rubric:\n{config.rubric}"]
    if config.prompt_column in row:
        parts.append(f"Question:\n{_as_text(row[config.prompt_column])}")
    if config.reference_column is not None and config.reference_column in row:
        parts.append(f"Reference answer:\n{_as_text(row[config.reference_column])}")
    parts.append(f"Answer to grade:\n{completion}")
    parts.append(
        f"Grade the answer with a whole number from {low} (worst) to {high} (best). Reply 'Score: N'."
    )
    return [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def parse_score(reply: str, scale: tuple[int, int]) -> float | None:
    """The judge's score on ``scale``, read from a free-form reply; None when there is none.

    Explicit forms win ("Score: 4", "**Score:** 4", "4/5", "4 out of 5"); otherwise the last bare
    number on the scale, because judges that reason first put their verdict at the end. Numbers off
    the scale are not scores (a "7" on 1-5 is more likely a count in the reasoning than a grade).
    """
    low, high = scale
    for pattern in _EXPLICIT:
        for match in pattern.finditer(reply):
            value = float(match.group(1))
            if low <= value <= high:
                return value
    bare = [float(m.group(1)) for m in _BARE.finditer(reply)]
    on_scale = [value for value in bare if low <= value <= high]
    return on_scale[-1] if on_scale else None


def normalise_score(value: float, scale: tuple[int, int]) -> float:
    """Map a score on ``scale`` to [0, 1]: the lowest grade is 0.0, the highest 1.0."""
    low, high = scale
    return (value - low) / (high - low)


def teacher_for(config: JudgeCheckConfig) -> Teacher:
    """The model behind the judge: an endpoint client, or a local model loaded now (once per check).

    Raises:
        NotFound / InvalidInput: the local model cannot be loaded, or the API key variable is unset.
    """
    from largeforge.data.teachers import EndpointTeacher, LocalTeacher

    if config.model_dir is not None:
        return LocalTeacher(config.model_dir)
    assert config.base_url is not None and config.model is not None  # guaranteed by the config
    return EndpointTeacher(config.base_url, config.model, api_key_env=config.api_key_env)


def make_judge(config: JudgeCheckConfig, teacher: Teacher) -> CheckFn:
    """A judge check that asks ``teacher`` (tests pass a fake or a mocked endpoint here)."""

    def score(completion: str, row: Mapping[str, Any]) -> float:
        reply = teacher.complete(
            judge_messages(config, completion, row), temperature=0.0, max_tokens=config.max_tokens
        )
        value = parse_score(reply, config.scale)
        if value is None:
            logger.warning("judge %s gave no score on %s: %r", teacher.name, list(config.scale), reply[:200])
            return 0.0
        return normalise_score(value, config.scale)

    return score


def judge_check(config: JudgeCheckConfig) -> CheckFn:
    """The registry factory: the judge's model is reached (or loaded) once, when the check is built."""
    return make_judge(config, teacher_for(config))


__all__ = [
    "JUDGE_SYSTEM_PROMPT",
    "judge_check",
    "judge_messages",
    "make_judge",
    "normalise_score",
    "parse_score",
    "teacher_for",
]
