"""Every check scores real completions: a pass, a fail, and its config errors caught before any run."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from largeforge.checks import CHECKS, CheckConfig, CheckName, build_check, parse_check_config
from largeforge.errors import InvalidInput, NotFound

ROW = {"answer": '{"name": "Ana Brown", "age": 45, "city": "Paris"}', "label": "  two  words "}


def score(document: dict[str, Any], completion: str, row: dict[str, Any] = ROW) -> float:
    return build_check(parse_check_config(document))(completion, row)


def test_registry_keys_match_the_check_literal_and_the_config_union() -> None:
    assert set(CHECKS) == set(typing.get_args(CheckName))
    members = typing.get_args(typing.get_args(CheckConfig)[0])
    assert {m.model_fields["type"].default for m in members} == set(CHECKS)


@pytest.mark.parametrize(
    ("document", "completion", "expected"),
    [
        ({"type": "exact"}, ' {"name": "Ana Brown", "age": 45, "city": "Paris"}\n', 1.0),
        ({"type": "exact"}, '{"name": "Ana Brown", "age": 45, "city": "Lima"}', 0.0),
        ({"type": "exact", "column": "label"}, "two  words", 1.0),
        ({"type": "exact", "column": "label"}, "two words", 0.0),
        ({"type": "exact", "column": "label", "normalize_whitespace": True}, "two \n words", 1.0),
        ({"type": "regex", "pattern": r"\d+"}, "age 45", 1.0),
        ({"type": "regex", "pattern": r"\d+"}, "no digits", 0.0),
        ({"type": "regex", "pattern": r"\d+", "fullmatch": True}, "age 45", 0.0),
        ({"type": "regex", "pattern": r"\d+", "fullmatch": True}, " 45\n", 1.0),
        ({"type": "json"}, '{"any": [1, 2]}', 1.0),
        ({"type": "json"}, '{"name": "Ana"', 0.0),
        # json_match: key order and spacing do not matter, values do.
        ({"type": "json", "column": "answer"}, '{"city":"Paris","age":45,"name":"Ana Brown"}', 1.0),
        ({"type": "json", "column": "answer"}, '{"city":"Paris","age":46,"name":"Ana Brown"}', 0.0),
        ({"type": "json", "column": "answer"}, "not json", 0.0),
        ({"type": "length", "max": 5}, "12345\n", 1.0),
        ({"type": "length", "max": 5}, "123456", 0.0),
        ({"type": "length", "unit": "words", "min": 2, "max": 3}, "one two three", 1.0),
        ({"type": "length", "unit": "words", "min": 2, "max": 3}, "one", 0.0),
    ],
)
def test_builtin_checks_pass_and_fail(document: dict[str, Any], completion: str, expected: float) -> None:
    assert score(document, completion) == expected


def test_json_match_accepts_an_object_column() -> None:
    row = {"expected": {"a": [1, 2]}}
    assert score({"type": "json", "column": "expected"}, '{"a": [1, 2]}', row) == 1.0
    assert score({"type": "json", "column": "expected"}, '{"a": [2, 1]}', row) == 0.0


def test_json_schema_check() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    document = {"type": "json_schema", "json_schema": schema}
    assert score(document, '{"name": "Ana", "age": 45}') == 1.0
    assert score(document, '{"name": "Ana", "age": "45"}') == 0.0
    assert score(document, '{"name": "Ana"}') == 0.0
    assert score(document, "name: Ana") == 0.0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "regex", "pattern": "(unclosed"}, "pattern: '(unclosed' is not a valid regular expression"),
        ({"type": "json_schema", "json_schema": {"type": "no-such-type"}}, "json_schema: not a valid JSON"),
        ({"type": "length"}, "needs min, max or both"),
        ({"type": "length", "min": 5, "max": 2}, "min (5) is larger than max (2)"),
        ({"type": "python", "function": "no_colon"}, "must look like module:function"),
        ({"type": "exact", "colum": "answer"}, "colum"),
        ({"type": "bleu"}, "does not match any of the expected tags"),
    ],
)
def test_bad_configs_are_refused_when_parsed(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_check_config(document)


def test_a_missing_column_names_the_column() -> None:
    with pytest.raises(InvalidInput, match="reads column 'answer'"):
        score({"type": "exact"}, "x", {"question": "q"})


def write_user_checks(folder: Path) -> Path:
    path = folder / "my_checks.py"
    path.write_text(
        "def mentions_city(completion, row):\n"
        "    return row['city'] in completion\n"
        "def half(completion, row):\n"
        "    return 0.5\n"
        "def too_big(completion, row):\n"
        "    return 2\n"
        "NOT_A_FUNCTION = 3\n"
    )
    return path


def test_python_check_from_a_file(tmp_path: Path) -> None:
    path = write_user_checks(tmp_path)
    row = {"city": "Paris"}
    assert score({"type": "python", "function": f"{path}:mentions_city"}, "she lives in Paris", row) == 1.0
    assert score({"type": "python", "function": f"{path}:mentions_city"}, "she lives in Lima", row) == 0.0
    assert score({"type": "python", "function": f"{path}:half"}, "", row) == 0.5
    with pytest.raises(InvalidInput, match="returned 2; a check returns a bool or a number between 0 and 1"):
        score({"type": "python", "function": f"{path}:too_big"}, "", row)


def test_python_check_from_an_importable_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "lf_test_user_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_user_checks(package)
    monkeypatch.syspath_prepend(str(tmp_path))
    document = {"type": "python", "function": "lf_test_user_pkg.my_checks:mentions_city"}
    assert score(document, "Lima, Peru", {"city": "Lima"}) == 1.0
    assert score(document, "Paris", {"city": "Lima"}) == 0.0


@pytest.mark.parametrize(
    ("reference", "error", "message"),
    [
        ("{file}:missing", NotFound, "has no function 'missing'; it defines \\['half', 'mentions_city'"),
        ("{file}:NOT_A_FUNCTION", InvalidInput, "is a int, not a function"),
        ("{folder}/absent.py:check", NotFound, "absent.py does not exist"),
        ("lf_no_such_module.sub:check", NotFound, "module 'lf_no_such_module.sub' cannot be imported"),
        ("json:no_such_function", NotFound, "json has no function 'no_such_function'"),
    ],
)
def test_python_check_reports_what_is_missing(
    reference: str, error: type[Exception], message: str, tmp_path: Path
) -> None:
    path = write_user_checks(tmp_path)
    config = parse_check_config({"type": "python", "function": reference.format(file=path, folder=tmp_path)})
    with pytest.raises(error, match=message):
        build_check(config)


def test_a_syntax_error_in_a_check_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def check(completion, row)\n    return 1\n")
    with pytest.raises(InvalidInput, match="syntax error at line 1"):
        build_check(parse_check_config({"type": "python", "function": f"{path}:check"}))
