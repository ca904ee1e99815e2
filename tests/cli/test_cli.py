"""The CLI end to end through Typer's CliRunner: exit codes, --json documents, error messages."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from largeforge.cli.main import app
from tests.conftest import NANO_CORPUS

runner = CliRunner()

GOOD_ROWS = [
    {"messages": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": f"hello {i}"}]}
    for i in range(5)
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_model_init_json_then_conflict_without_overwrite(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(NANO_CORPUS), encoding="utf-8")
    args = ["model", "init", str(tmp_path / "m"), "--corpus", str(corpus), "--vocab-size", "300"]
    args += ["--set", "hidden_size=32", "--set", "num_hidden_layers=1", "--set", "intermediate_size=64"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["architecture"] == "qwen2" and 0 < info["parameters"] < 100_000
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "--overwrite" in again.output and "Traceback" not in again.output


def test_model_init_rejects_malformed_set(tmp_path: Path) -> None:
    result = runner.invoke(app, ["model", "init", str(tmp_path / "m"), "--set", "hidden_size:big"])
    assert result.exit_code == 1
    assert "FIELD=INTEGER" in result.output


def test_validate_exit_codes_and_row_errors(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", GOOD_ROWS)
    result = runner.invoke(app, ["data", "validate", str(good)])
    assert result.exit_code == 0 and "valid" in result.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(GOOD_ROWS[0])
        + "\n{not json\n"
        + json.dumps({"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]})
        + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["data", "validate", str(bad), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    lines = sorted(e["line"] for e in report["errors"])
    assert lines[0] == 2 and 3 in lines
    assert any("bot" in e["problem"] for e in report["errors"])


def test_validate_missing_file_is_exit_1_not_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1
    assert "nope.jsonl does not exist" in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception


def test_import_list_show_preview(tmp_path: Path, tiny_model_dir: Path) -> None:
    file = write_jsonl(tmp_path / "chats.jsonl", GOOD_ROWS)
    first = runner.invoke(app, ["data", "import", str(file), "--name", "chats"])
    assert first.exit_code == 0, first.output
    version_id = first.stdout.strip().splitlines()[-1]
    again = runner.invoke(app, ["data", "import", str(file), "--name", "chats", "--json"])
    assert json.loads(again.stdout)["id"] == version_id and json.loads(again.stdout)["created"] is False

    listed = json.loads(runner.invoke(app, ["data", "list", "--json"]).stdout)
    assert listed["count"] == 1 and listed["data"][0]["names"] == ["chats"]

    shown = json.loads(runner.invoke(app, ["data", "show", "chats", "--rows", "2", "--json"]).stdout)
    assert shown["id"] == version_id and shown["row_count"] == 5 and shown["rows"] == GOOD_ROWS[:2]

    preview = runner.invoke(
        app, ["data", "preview", version_id[:8], "--model", str(tiny_model_dir), "--json"]
    )
    assert preview.exit_code == 0, preview.output
    row = json.loads(preview.stdout)["rows"][0]
    trained = "".join(t for t, m in zip(row["tokens"], row["trained"], strict=True) if m)
    assert trained == "hello 0<|im_end|>"


def test_import_with_tokenizer_records_token_stats(tmp_path: Path, tiny_model_dir: Path) -> None:
    file = write_jsonl(tmp_path / "chats.jsonl", GOOD_ROWS)
    result = runner.invoke(
        app, ["data", "import", str(file), "-n", "chats", "--tokenizer", str(tiny_model_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)["token_stats"][str(tiny_model_dir)]
    assert 0 < stats["min"] <= stats["p50"] <= stats["max"] and stats["total"] >= 5 * stats["min"]


def test_import_invalid_file_stores_nothing(tmp_path: Path, largeforge_home: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "no answer"}]}])
    result = runner.invoke(app, ["data", "import", str(bad), "--name", "bad", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "invalid_data"
    assert not (largeforge_home / "datasets" / "versions").exists()


def test_usage_error_is_exit_2(tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "chats.jsonl", GOOD_ROWS)
    result = runner.invoke(app, ["data", "import", str(file)])  # --name missing
    assert result.exit_code == 2


def test_show_unknown_reference(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "show", "missing-name", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "not_found"


def test_env_reports_versions_device_and_paths(largeforge_home: Path) -> None:
    result = runner.invoke(app, ["env", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["packages"]["torch"].startswith("2.") and doc["packages"]["transformers"]
    assert doc["device"]["default_device"] in {"cpu", "cuda", "mps"}
    assert doc["paths"]["home"] == str(largeforge_home.resolve())


def test_synth_needs_exactly_one_teacher(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("What is 2+2?\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "synth", str(seeds), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "exactly one teacher" in result.output
    result = runner.invoke(
        app,
        ["data", "synth", str(seeds), "-o", str(tmp_path / "o.jsonl"), "--base-url", "http://127.0.0.1:9/v1"],
    )
    assert result.exit_code == 1 and "--model" in result.output


def test_synth_with_local_teacher_writes_and_imports(tmp_path: Path, tiny_model_dir: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Say hi\nName a city\n", encoding="utf-8")
    out = tmp_path / "synth.jsonl"
    args = ["data", "synth", str(seeds), "-o", str(out), "--teacher", str(tiny_model_dir)]
    result = runner.invoke(
        app, [*args, "--max-tokens", "6", "--temperature", "1.0", "--import-as", "syn", "--json"]
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert outcome["rows"] == len(written) and outcome["rows"] + outcome["skipped"] == 2
    if written:  # a random tiny model may produce only blank answers, which are skipped
        assert written[0]["messages"][0] == {"role": "user", "content": "Say hi"}
        assert outcome["version_id"]
