"""One test per kind of bad input: each asserts where the problem is and what the message says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from largeforge.data.reading import read_dataset
from largeforge.data.validation import RowError
from largeforge.errors import DataValidationError, InvalidInput

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


def jsonl(tmp_path: Path, *rows: object, name: str = "d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def only_error(path: Path, **kwargs: object) -> RowError:
    report = read_dataset(path, **kwargs).report  # type: ignore[arg-type]
    assert not report.ok and report.errors_total == 1, report.errors
    return report.errors[0]


def test_invalid_json_line_keeps_reading(tmp_path: Path) -> None:
    dataset = read_dataset(jsonl(tmp_path, GOOD, '{"messages": [', GOOD))
    assert dataset.report.errors[0].line == 2 and "not valid JSON" in dataset.report.errors[0].problem
    assert len(dataset.rows) == 2 and dataset.report.rows_total == 3 and dataset.report.rows_valid == 2


def test_non_utf8_line_is_reported_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    good = json.dumps(GOOD).encode()
    bad = '{"text": "café"}'.encode("latin-1")
    path.write_bytes(good + b"\n" + good + b"\n" + bad + b"\n")
    error = only_error(path)
    assert error.line == 3 and "not valid UTF-8" in error.problem and "iconv" in error.hint


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(InvalidInput, match="is empty"):
        read_dataset(tmp_path / "empty.jsonl")


def test_missing_column_names_the_columns_present(tmp_path: Path) -> None:
    error = only_error(jsonl(tmp_path, {"instruction": "Say hi"}), format="alpaca")
    assert error.row == 1 and error.field == "output"
    assert "missing column 'output'" in error.problem and "instruction" in error.problem


def test_wrong_role(tmp_path: Path) -> None:
    row = {"messages": [{"role": "human", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    error = only_error(jsonl(tmp_path, GOOD, row))
    assert (error.line, error.row, error.field) == (2, 2, "messages[0].role")
    assert "'human' is not a known role" in error.problem and "user" in error.hint


def test_empty_turn(tmp_path: Path) -> None:
    row = {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "Hello"}]}
    error = only_error(jsonl(tmp_path, row))
    assert error.field == "messages[0].content" and error.problem == "is empty"


def test_no_assistant_turn(tmp_path: Path) -> None:
    error = only_error(jsonl(tmp_path, {"messages": [{"role": "user", "content": "Hi"}]}))
    assert error.field == "messages" and "no assistant turn" in error.problem


def test_system_not_first(tmp_path: Path) -> None:
    row = {
        "messages": [
            *GOOD["messages"],
            {"role": "system", "content": "late"},
            {"role": "assistant", "content": "x"},
        ]
    }
    error = only_error(jsonl(tmp_path, row))
    assert error.field == "messages[2].role" and "must come first" in error.problem


def test_all_problems_of_one_row_are_reported(tmp_path: Path) -> None:
    row = {"messages": [{"role": "bot", "content": ""}, {"role": "user", "content": 3}]}
    report = read_dataset(jsonl(tmp_path, row)).report
    fields = [e.field for e in report.errors]
    assert fields == ["messages[0].role", "messages[0].content", "messages[1].content", "messages"]


def test_mixed_preference_styles(tmp_path: Path) -> None:
    row = {"prompt": "Q?", "chosen": [{"role": "assistant", "content": "A"}], "rejected": "B"}
    error = only_error(jsonl(tmp_path, row))
    assert "mixes text and message lists" in error.problem and "chosen is messages" in error.problem


def test_chosen_equals_rejected(tmp_path: Path) -> None:
    error = only_error(jsonl(tmp_path, {"prompt": "Q?", "chosen": "same", "rejected": "same"}))
    assert error.field == "rejected" and "identical" in error.problem


def test_bad_kto_label(tmp_path: Path) -> None:
    error = only_error(jsonl(tmp_path, {"prompt": "Q?", "completion": "A", "label": "maybe"}))
    assert error.field == "label" and "'maybe' is not a label" in error.problem


def test_over_long_row_by_characters(tmp_path: Path) -> None:
    error = only_error(jsonl(tmp_path, {"text": "x" * 500}), max_chars=100)
    assert "over-long" in error.problem and "100" in error.problem


def test_over_long_row_by_tokens(tmp_path: Path, tiny_model_dir: Path) -> None:
    from largeforge.model_source import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    path = jsonl(
        tmp_path, GOOD, {"messages": [GOOD["messages"][0], {"role": "assistant", "content": "word " * 50}]}
    )
    error = only_error(path, tokenizer=tokenizer, max_tokens=30)
    assert error.row == 2 and "tokens, the limit is 30" in error.problem


def test_error_limit_counts_past_what_it_stores(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "Hi"}]}] * 60
    report = read_dataset(jsonl(tmp_path, *rows)).report
    assert len(report.errors) == 50 and report.errors_total == 60
    assert read_dataset(jsonl(tmp_path, *rows), max_errors=5).report.errors[-1].row == 5


def test_require_valid_raises_with_the_report(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as info:
        read_dataset(jsonl(tmp_path, {"text": ""})).require_valid()
    assert info.value.to_dict()["error"]["report"]["errors"][0]["field"] == "text"
    assert "1 problem(s) in 1 of 1 rows" in info.value.message


def test_unused_columns_are_a_warning_not_an_error(tmp_path: Path) -> None:
    dataset = read_dataset(jsonl(tmp_path, {**GOOD, "source": "web"}))
    assert dataset.report.ok and dataset.rows == [GOOD]
    assert dataset.report.warnings == ["ignored columns not used by format 'messages': source"]


def test_row_error_describes_itself() -> None:
    error = RowError(5, 7, "messages[2].role", "'bot' is not a known role", "use one of user, assistant")
    assert (
        error.describe()
        == "line 7 (row 5), field 'messages[2].role': 'bot' is not a known role — use one of user, assistant"
    )


def test_unreadable_file_reports_its_parse_errors_not_the_format(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('[\n{"text": "a"},\n{"text": }\n]')
    with pytest.raises(DataValidationError) as info:
        read_dataset(tmp_path / "bad.json")
    report = info.value.report
    assert [(e.line, e.row) for e in report.errors] == [(3, None)]
    assert "not valid JSON" in info.value.message and "cannot tell the format" not in info.value.message


def test_unknown_format_override_lists_the_names(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown format 'chatml'; choose one of text, messages, sharegpt"):
        read_dataset(jsonl(tmp_path, GOOD), format="chatml")


def test_report_limit_defaults_to_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from largeforge.data.validation import ValidationReport
    from largeforge.settings import get_settings

    monkeypatch.setenv("LARGEFORGE_MAX_VALIDATION_ERRORS", "3")
    get_settings.cache_clear()
    assert ValidationReport(source="x").limit == 3
    report = read_dataset(jsonl(tmp_path, *[{"text": ""}] * 5)).report
    assert (len(report.errors), report.errors_total) == (3, 5)
