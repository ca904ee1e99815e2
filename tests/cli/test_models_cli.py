"""``largeforge models`` and training runs that register themselves, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from largeforge.cli.main import app
from tests.training.conftest import DATA

runner = CliRunner()


def invoke_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_register_show_alias_lineage_delete(tiny_model_dir: Path) -> None:
    first = invoke_json("models", "register", str(tiny_model_dir), "--name", "tiny", "--dataset", "abc123")
    assert first["ref"] == "tiny:1" and first["kind"] == "base"
    assert "model.safetensors" in first["files"]
    invoke_json("models", "register", str(tiny_model_dir), "--name", "tiny-copy", "--parent", "base=tiny:1")
    moved = invoke_json("models", "alias", "set", "tiny", "production", "1", "--reason", "first")
    assert moved == {"alias": "tiny@production", "moved": True, "from": None, "to": 1}
    assert invoke_json("models", "show", "tiny@production")["version"] == 1
    listed = invoke_json("models", "list")
    assert {row["name"]: row["aliases"] for row in listed["data"]}["tiny"] == {"production": 1}
    lineage = invoke_json("models", "lineage", "tiny-copy")
    assert lineage["parents"][0]["ref"] == "tiny:1" and lineage["parents"][0]["inputs"][0]["ref"] == "abc123"
    refused = runner.invoke(app, ["models", "delete", "tiny:1"])
    assert refused.exit_code == 1 and "tiny-copy:1 (base) depend on it" in refused.output
    history = invoke_json("models", "alias", "history", "tiny")
    assert history["data"][0]["reason"] == "first"


def test_unknown_reference_and_bad_delete_are_clear(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["models", "show", "nope:1", "--json"])
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"]["code"] == "not_found"
    bare = runner.invoke(app, ["models", "delete", "nope"])
    assert bare.exit_code == 1 and "explicit version" in bare.output


def test_training_run_registers_with_lineage_and_trains_from_a_reference(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    invoke_json("models", "register", str(tiny_model_dir), "--name", "tiny")
    invoke_json("models", "alias", "set", "tiny", "production", "1")
    recipe = {
        "method": "sft",
        "model": "tiny@production",  # a registry reference, materialised for training
        "data": {"train": str(DATA["sft"])},
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 96},
        "lora": {"r": 4},
        "register_as": {"name": "tiny-sft", "tags": {"task": "extraction"}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = invoke_json("train", str(path), "-o", str(tmp_path / "run"))
    assert result["metrics"]["registered"] == "tiny-sft:1"
    version = invoke_json("models", "show", "tiny-sft:1")
    assert version["kind"] == "adapter" and version["tags"] == {"method": "sft", "task": "extraction"}
    assert version["metrics"]["steps"] == 2
    lineage = invoke_json("models", "lineage", "tiny-sft:1")
    assert lineage["parents"][0] == {
        "relation": "base",
        "ref": "tiny:1",
        "kind": "base",
        "inputs": [],
        "parents": [],
    }
    assert {"kind": "run", "ref": str(tmp_path / "run")} in lineage["inputs"]


def write_suite(path: Path, check: dict) -> Path:  # type: ignore[type-arg]
    suite = {
        "name": "gate",
        "generation": {"max_tokens": 4},
        "cases": [{"id": "c1", "prompt": "Hi"}],
        "checks": [check],
    }
    path.write_text(yaml.safe_dump(suite))
    return path


def test_alias_set_require_gate_moves_only_when_the_gate_passes(tmp_path: Path, tiny_model_dir: Path) -> None:
    invoke_json("models", "register", str(tiny_model_dir), "--name", "tiny")
    invoke_json("models", "register", str(tiny_model_dir), "--name", "tiny")
    invoke_json("models", "alias", "set", "tiny", "production", "1")
    failing = write_suite(tmp_path / "fail.yaml", {"type": "regex", "pattern": "^NEVER-MATCHES$"})
    refused = runner.invoke(
        app,
        [
            "models",
            "alias",
            "set",
            "tiny",
            "production",
            "2",
            "--require-gate",
            str(failing),
            "--min",
            "pass_rate=1",
            "--json",
        ],
    )
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["moved"] is False
    assert invoke_json("models", "show", "tiny@production")["version"] == 1
    passing = write_suite(tmp_path / "pass.yaml", {"type": "length", "max": 10000})
    moved = invoke_json(
        "models",
        "alias",
        "set",
        "tiny",
        "production",
        "2",
        "--require-gate",
        str(passing),
        "--min",
        "pass_rate=1",
    )
    assert moved["moved"] is True and moved["to"] == 2
    history = invoke_json("models", "alias", "history", "tiny", "production")["data"]
    assert history[-1]["reason"].startswith("gate passed")


def test_min_without_gate_is_refused(tiny_model_dir: Path) -> None:
    invoke_json("models", "register", str(tiny_model_dir), "--name", "tiny")
    result = runner.invoke(
        app, ["models", "alias", "set", "tiny", "production", "1", "--min", "pass_rate=0.5"]
    )
    assert result.exit_code == 1 and "--require-gate" in result.output
