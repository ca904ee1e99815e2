"""KTO rows: a ``prompt``, one ``completion`` and a desirable/undesirable ``label``."""

from __future__ import annotations

from typing import Any

from largeforge.data.formats._spec import FieldProblem, FormatSpec, NormalizeResult, missing_columns
from largeforge.data.formats.preference import check_prompt_and_answers

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def parse_label(value: Any) -> bool | None:
    """bool, 0/1 or their spellings in text (CSV cells); None when it is none of those."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def normalize(data: dict[str, Any]) -> NormalizeResult:
    columns = ("prompt", "completion", "label")
    extra = sorted(set(data) - set(columns))
    problems = missing_columns(data, columns, "kto")
    if problems:
        return NormalizeResult(None, problems, extra)
    problems = check_prompt_and_answers(data, ("completion",))
    label = parse_label(data["label"])
    if label is None:
        problems.append(
            FieldProblem(
                "label",
                f"{data['label']!r} is not a label",
                "use true/false (or 1/0) for desirable/undesirable",
            )
        )
    row = None if problems else {"prompt": data["prompt"], "completion": data["completion"], "label": label}
    return NormalizeResult(row, problems, extra)


SPEC = FormatSpec(
    "kto",
    "kto",
    "single completions labelled desirable or not, for KTO",
    ("prompt", "completion", "label"),
    normalize,
)
