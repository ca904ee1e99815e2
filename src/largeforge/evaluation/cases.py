"""Cases of a suite as a model and a check see them.

Owns reading ``cases_from`` datasets into cases, filling ``{var}`` placeholders, the conversation sent
to the model and the row handed to checks (``expected``, ``prompt``, the case's vars and extra
columns), and refusing suites whose checks read a column some case lacks — before any model loads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound
from largeforge.evaluation.suites import CasesFrom, Suite, SuiteCase

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
# Rows of these kinds can become cases; others (preference, kto, text) have no single prompt to ask.
CASE_KINDS = ("prompt", "conversation")


def fill(text: str, values: dict[str, Any]) -> str:
    """Replace ``{name}`` for every name in ``values``; other braces (JSON in a prompt) stay as written."""
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], text)


def case_messages(suite: Suite, case: SuiteCase) -> list[dict[str, str]]:
    """The conversation the model answers: the suite's system prompt (unless the case has one), then
    the case's prompt or messages with its vars filled in."""
    if case.messages is not None:
        messages = [{"role": m.role, "content": fill(m.content, case.vars)} for m in case.messages]
    else:
        messages = [{"role": "user", "content": fill(str(case.prompt), case.vars)}]
    if suite.system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": suite.system})
    return messages


def case_row(case: SuiteCase) -> dict[str, Any]:
    """The row a check scores against: extra columns, vars, ``prompt`` and (when set) ``expected``."""
    prompt: Any = (
        fill(case.prompt, case.vars)
        if case.prompt is not None
        else [{"role": m.role, "content": fill(m.content, case.vars)} for m in case.messages or []]
    )
    row: dict[str, Any] = {**case.data, **case.vars, "prompt": prompt}
    if case.expected is not None:
        row["expected"] = case.expected
    return row


def read_dataset_rows(ref: str, search: list[Path]) -> tuple[str, list[dict[str, Any]]]:
    """The kind and normalised rows of a dataset file or a stored dataset version.

    A relative path is tried against each folder of ``search`` in order (the current directory is
    always first); anything that is not a file is read as a dataset version (id, NAME or NAME@N).

    Raises:
        NotFound: neither a file nor a stored version. DataValidationError: the file has bad rows.
    """
    from largeforge.data.reading import read_dataset
    from largeforge.data.versions import open_dataset_store

    path = Path(ref).expanduser()
    folders = [Path.cwd(), *search]
    for candidate in [path] if path.is_absolute() else [folder / path for folder in folders]:
        if candidate.exists():
            dataset = read_dataset(candidate).require_valid()
            return dataset.kind, dataset.rows
    store = open_dataset_store()
    try:
        version = store.get(ref)
    except NotFound as exc:
        where = " and ".join(str(folder) for folder in folders)
        raise NotFound(
            f"{ref!r} is neither a file (looked in {where}) nor a stored dataset version "
            "(`largeforge data list` shows them)"
        ) from exc
    return version.kind, store.rows(version.id)


def _row_case(number: int, row: dict[str, Any], kind: str, expected_column: str) -> SuiteCase:
    if kind == "conversation":
        messages = list(row["messages"])
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        return SuiteCase.model_validate(
            {"id": f"row-{number}", "messages": messages[:last], "expected": messages[last]["content"]}
        )
    prompt = row["prompt"]
    key = "messages" if isinstance(prompt, list) else "prompt"
    data = {k: v for k, v in row.items() if k != "prompt"}
    return SuiteCase.model_validate(
        {"id": f"row-{number}", key: prompt, "expected": row.get(expected_column), "data": data}
    )


def dataset_cases(source: CasesFrom, base_dir: Path) -> list[SuiteCase]:
    """Cases ``row-1``, ``row-2`` … from a prompt or conversation dataset.

    Prompt rows keep every column (so a check may read ``answer`` as a GRPO reward would) and take
    ``expected`` from ``source.expected``; a conversation's last assistant turn is the expected answer.

    Raises:
        NotFound: no such file or dataset version. InvalidInput / DataValidationError: wrong kind, bad rows.
    """
    try:
        kind, rows = read_dataset_rows(source.dataset, [base_dir])
    except NotFound as exc:
        raise NotFound(f"cases_from.dataset: {exc.message}") from exc
    if kind not in CASE_KINDS:
        raise InvalidInput(
            f"cases_from.dataset: {source.dataset} holds {kind} data; a suite asks prompts, so use prompt "
            "data (a prompt column plus the answer) or conversations (the last assistant turn is expected)"
        )
    rows = rows[: source.limit] if source.limit else rows
    return [_row_case(number, row, kind, source.expected) for number, row in enumerate(rows, start=1)]


def check_columns(suite: Suite) -> None:
    """Refuse a suite whose checks read a column that some case's row lacks (all problems at once).

    Raises:
        InvalidInput: e.g. ``checks.1.column: case 'a' has no column 'answer'``.
    """
    problems = []
    rows = [(case.id, case_row(case)) for case in suite.cases]
    for index, entry in enumerate(suite.checks):
        for column in entry.check.columns():
            lacking = [case_id for case_id, row in rows if column not in row]
            if lacking:
                shown = ", ".join(repr(i) for i in lacking[:3]) + (" …" if len(lacking) > 3 else "")
                hint = (
                    "give those cases an expected value" if column == "expected" else "add it to their data"
                )
                problems.append(
                    f"  checks.{index}.column: {len(lacking)} case(s) have no column {column!r} ({shown}); {hint}"
                )
    if problems:
        raise InvalidInput(f"the suite has {len(problems)} problem(s):\n" + "\n".join(problems))


def resolve_cases(suite: Suite, *, base_dir: Path) -> Suite:
    """The suite with ``cases_from`` read into ``cases`` (so its digest covers the data) and checked."""
    cases = list(suite.cases)
    if suite.cases_from is not None:
        taken = {case.id for case in cases}
        loaded = dataset_cases(suite.cases_from, base_dir)
        clash = [case.id for case in loaded if case.id in taken]
        if clash:
            raise InvalidInput(
                f"cases: ids {', '.join(clash[:3])} clash with the rows of cases_from; rename them"
            )
        cases += loaded
    resolved = suite.model_copy(update={"cases": cases, "cases_from": None})
    check_columns(resolved)
    return resolved


__all__ = [
    "CASE_KINDS",
    "case_messages",
    "case_row",
    "check_columns",
    "dataset_cases",
    "fill",
    "read_dataset_rows",
    "resolve_cases",
]
