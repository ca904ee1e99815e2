"""Suites: YAML → validated suite, every error with its path, cases from datasets, digests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from largeforge.errors import InvalidInput, NotFound
from largeforge.evaluation import load_suite, suite_digest, validate_suite
from largeforge.evaluation.cases import case_messages, case_row
from tests.evaluation.conftest import EXAMPLE_SUITE, PROMPT_DATA, SFT_DATA, nano_suite, write_suite


def test_the_example_suite_reads_the_prompt_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # ../data is found next to the suite file, wherever we run from
    suite = load_suite(EXAMPLE_SUITE)
    rows = [json.loads(line) for line in PROMPT_DATA.read_text().splitlines() if line.strip()]
    assert len(suite.cases) == 2 + len(rows) and suite.cases_from is None
    assert suite.check_names() == ["json_valid", "json_match", "exact"]
    first = suite.cases[2]
    assert (first.id, first.expected) == ("row-1", rows[0]["answer"])
    assert case_messages(suite, first) == rows[0]["prompt"]  # it brings its own system prompt
    assert case_row(first)["answer"] == rows[0]["answer"]  # columns stay readable, as for GRPO rewards


def test_vars_fill_placeholders_and_the_system_prompt_comes_first(tmp_path: Path) -> None:
    document = nano_suite(
        system="Answer briefly.",
        cases=[{"id": "v", "prompt": 'Is {city} in {"json": "stays"}?', "vars": {"city": "Lima"}}],
    )
    suite = load_suite(write_suite(tmp_path, document))
    case = suite.cases[0]
    assert case_messages(suite, case) == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": 'Is Lima in {"json": "stays"}?'},
    ]
    assert case_row(case) == {"city": "Lima", "prompt": 'Is Lima in {"json": "stays"}?'}


def test_every_problem_is_reported_with_its_yaml_path() -> None:
    document = {
        "name": "bad name!",
        "cases": [
            {"id": "a", "prompt": "p", "messages": [{"role": "user", "content": "m"}]},
            {"prompt": "q"},
        ],
        "checks": [
            {"type": "regex", "pattern": "(unclosed", "weight": 2},
            {"type": "bleu"},
            {"type": "exact", "colum": "expected"},
            {"type": "json", "weight": -1},
        ],
        "generation": {"max_tokens": 0},
        "metrics": ["meteor"],
        "extra": 1,
    }
    with pytest.raises(InvalidInput) as caught:
        validate_suite(document)
    message = caught.value.message
    for expected in (
        "cases.0: a case needs exactly one of prompt (text) or messages",
        "cases.1.id: Field required",
        "checks.0.pattern: '(unclosed' is not a valid regular expression",
        "checks.1.type: Input tag 'bleu'",
        "checks.2.colum: is not a suite field",
        "checks.3.weight: Input should be greater than 0",
        "generation.max_tokens: Input should be greater than 0",
        "metrics.0: Input should be 'bleu' or 'rouge'",
        "extra: is not a suite field",
    ):
        assert expected in message, message
    assert message.startswith("the suite has 9 problem(s)")


def test_suite_level_rules() -> None:
    with pytest.raises(InvalidInput, match="needs cases, cases_from or both"):
        validate_suite(nano_suite(cases=[]))
    with pytest.raises(InvalidInput, match="case ids must be unique; repeated: a"):
        validate_suite(nano_suite(cases=[{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}]))
    with pytest.raises(InvalidInput, match="must end with the user's turn"):
        validate_suite(nano_suite(cases=[{"id": "a", "messages": [{"role": "assistant", "content": "x"}]}]))
    with pytest.raises(InvalidInput, match="bad name"):
        validate_suite(nano_suite(name="bad name"))
    with pytest.raises(InvalidInput, match="a suite is a YAML mapping"):
        validate_suite(["not", "a", "mapping"])


def test_checks_are_named_by_type_and_numbered() -> None:
    suite = validate_suite(
        nano_suite(
            checks=[
                {"type": "json"},
                {"type": "json", "column": "expected"},
                {"type": "exact", "name": "json_3"},
            ]
        )
    )
    assert suite.check_names() == ["json", "json_2", "json_3"]
    with pytest.raises(InvalidInput, match="check names must be unique; repeated: same"):
        validate_suite(
            nano_suite(checks=[{"type": "json", "name": "same"}, {"type": "exact", "name": "same"}])
        )


def test_a_check_reading_a_missing_column_is_refused_before_any_model_runs(tmp_path: Path) -> None:
    document = nano_suite(
        cases=[{"id": "with", "prompt": "p", "expected": "x"}, {"id": "without", "prompt": "q"}],
        checks=[{"type": "exact", "column": "expected"}, {"type": "exact"}],
    )
    with pytest.raises(InvalidInput) as caught:
        load_suite(write_suite(tmp_path, document))
    assert "checks.0.column: 1 case(s) have no column 'expected' ('without')" in caught.value.message
    assert "checks.1.column: 2 case(s) have no column 'answer'" in caught.value.message


def test_cases_from_a_conversation_dataset_and_a_stored_version(tmp_path: Path) -> None:
    from largeforge.data.versions import open_dataset_store

    rows = [json.loads(line) for line in SFT_DATA.read_text().splitlines() if line.strip()]
    suite = load_suite(
        write_suite(tmp_path, nano_suite(cases=[], cases_from={"dataset": str(SFT_DATA), "limit": 3}))
    )
    assert [c.id for c in suite.cases] == ["row-1", "row-2", "row-3"]
    assert suite.cases[0].expected == rows[0]["messages"][-1]["content"]
    assert suite.cases[0].messages is not None and suite.cases[0].messages[-1].role == "user"

    imported = open_dataset_store().add(
        rows=rows[:2], name="held-out", kind="conversation", format="messages", source={}
    )
    stored = load_suite(write_suite(tmp_path, nano_suite(cases=[], cases_from="held-out"), "stored.yaml"))
    assert len(stored.cases) == 2 and imported.version.row_count == 2


def test_wrong_kinds_and_missing_sources_are_clear(tmp_path: Path) -> None:
    text = Path(__file__).resolve().parents[2] / "examples" / "data" / "extraction-text.jsonl"
    with pytest.raises(InvalidInput, match="holds text data; a suite asks prompts"):
        load_suite(write_suite(tmp_path, nano_suite(cases_from=str(text))))
    with pytest.raises(NotFound, match=r"cases_from\.dataset: 'nope\.jsonl' is neither a file"):
        load_suite(write_suite(tmp_path, nano_suite(cases_from="nope.jsonl")))
    with pytest.raises(NotFound, match="does not exist"):
        load_suite(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InvalidInput, match="is not valid YAML"):
        load_suite(tmp_path / "broken.yaml")


def test_digest_changes_with_the_data_and_not_with_formatting(tmp_path: Path) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text(PROMPT_DATA.read_text())
    document = nano_suite(cases_from=str(data))
    first = suite_digest(load_suite(write_suite(tmp_path, document)))
    (tmp_path / "reformatted.yaml").write_text(json.dumps(document, indent=4))  # JSON is YAML too
    assert suite_digest(load_suite(tmp_path / "reformatted.yaml")) == first
    data.write_text(PROMPT_DATA.read_text().replace("Paris", "Paris, France", 1))
    assert suite_digest(load_suite(write_suite(tmp_path, document))) != first
