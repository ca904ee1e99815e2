"""``largeforge eval`` through the CLI on SQLite and PostgreSQL: exit codes, tables, --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from largeforge.cli.main import app
from largeforge.registry.service import open_registry
from tests.evaluation.conftest import SFT_DATA, nano_suite, write_suite

runner = CliRunner()


def invoke(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def register_tiny(tiny_model_dir: Path, copies: int = 1) -> None:
    with open_registry() as registry:
        for _ in range(copies):
            registry.register(tiny_model_dir, name="tiny")


def test_gate_exit_codes(database_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    register_tiny(tiny_model_dir)
    suite = str(write_suite(tmp_path, nano_suite()))
    passed = invoke("eval", "gate", "tiny:1", suite, "--min", "check/length=1", "--min", "pass_rate=0.5")
    assert "Gate on tiny:1: passed" in passed.stdout and "FAIL" not in passed.stdout
    failed = invoke(
        "eval", "gate", "tiny:1", suite, "--min", "pass_rate=0.8", "--min", "check/regex=0.5", code=1
    )
    assert "failed" in failed.stdout and failed.stdout.count("FAIL") == 2
    doc = json.loads(
        invoke("eval", "gate", "tiny:1", suite, "--min", "pass_rate=0.8", "--json", code=1).stdout
    )
    assert doc["passed"] is False and doc["failures"] == [
        {"metric": "pass_rate", "actual": 0.5, "required": 0.8}
    ]
    typo = invoke("eval", "gate", "tiny:1", suite, "--min", "pas_rate=0.8", code=1)
    assert "which the result does not have" in typo.output


def test_alias_moves_only_when_the_gate_passes(
    database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    register_tiny(tiny_model_dir, copies=2)
    with open_registry() as registry:
        registry.set_alias("tiny", "production", "1")
    suite = str(write_suite(tmp_path, nano_suite()))
    refused = invoke(
        "eval", "alias", "tiny", "production", "2", "--suite", suite, "--min", "pass_rate=0.9", code=1
    )
    assert "tiny@production not moved" in refused.stdout
    with open_registry() as registry:
        assert registry.get("tiny@production").version == 1  # unchanged
    moved = invoke(
        "eval", "alias", "tiny", "production", "2", "--suite", suite, "--min", "pass_rate=0.5", "--json"
    )
    doc = json.loads(moved.stdout)
    assert (doc["moved"], doc["from"], doc["to"]) == (True, 1, 2)
    with open_registry() as registry:
        assert registry.get("tiny@production").version == 2
        assert registry.alias_history("tiny", "production")[-1].reason == doc["reason"]


def test_run_list_show_and_compare(database_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    register_tiny(tiny_model_dir, copies=2)
    suite = str(write_suite(tmp_path, nano_suite()))
    table = invoke("eval", "run", "tiny:1", suite)
    assert "overall (weighted)" in table.stdout and "First 2 failing case(s)" in table.stdout
    doc = json.loads(invoke("eval", "run", "tiny:1", suite, "--json").stdout)
    assert (doc["target"], doc["version"], doc["summary"]["pass_rate"]) == ("tiny:1", "tiny:1", 0.5)
    assert [case["passed"] for case in doc["cases"]] == [{"length": True, "regex": False}] * 2
    listed = json.loads(invoke("eval", "list", "--target", "tiny:1", "--json").stdout)
    assert listed["count"] == 2 and listed["data"][0]["id"] == doc["id"]
    assert json.loads(invoke("eval", "show", doc["id"], "--json").stdout)["summary"] == doc["summary"]
    compared = json.loads(invoke("eval", "compare", "tiny:1", "tiny:2", suite, "--json").stdout)
    assert (compared["a"]["reused"], compared["ties"], compared["win_rate"]) == (True, 2, 0.0)
    assert "B wins 0, ties 2, loses 0" in invoke("eval", "compare", "tiny:1", "tiny:2", suite).stdout


def test_perplexity_and_clear_errors(database_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    register_tiny(tiny_model_dir)
    data = tmp_path / "few.jsonl"
    data.write_text("".join(SFT_DATA.read_text().splitlines(keepends=True)[:4]))
    doc = json.loads(invoke("eval", "perplexity", "tiny:1", str(data), "--json").stdout)
    assert doc["kind"] == "conversation" and doc["perplexity"] > 1 and doc["target"] == "tiny:1"
    bad = write_suite(tmp_path, nano_suite(checks=[{"type": "regex", "pattern": "("}]), "bad.yaml")
    error = json.loads(invoke("eval", "run", "tiny:1", str(bad), "--json", code=1).stdout)
    assert error["error"]["code"] == "invalid_input" and "checks.0.pattern" in error["error"]["message"]
    missing = invoke("eval", "run", "nope:1", str(write_suite(tmp_path, nano_suite())), code=1)
    assert "no registered model 'nope'" in missing.output
