from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from largeforge.cli.main import app
from largeforge.data.versions import open_dataset_store


def test_quickstart_runs_every_stage_and_is_idempotent(tmp_path: Path) -> None:
    args = [
        "quickstart",
        "--workdir",
        str(tmp_path / "qs"),
        "--train-rows",
        "40",
        "--eval-rows",
        "5",
        "--sft-steps",
        "2",
        "--dpo-steps",
        "2",
        "--city-steps",
        "2",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    names = [s["name"] for s in doc["stages"]]
    assert names == [
        "data",
        "base model",
        "label mask",
        "sft",
        "dpo (lora)",
        "register",
        "evaluate",
        "promote",
        "export",
        "serve + query",
        "route",
    ]
    stages = {s["name"]: s for s in doc["stages"]}
    assert stages["register"]["details"] == {
        "base": "quickstart-base:1",
        "sft": "quickstart-sft:1",
        "dpo": "quickstart-dpo:1",
    }
    # Two SFT steps teach nothing: the gate must refuse to move @production.
    assert stages["promote"]["details"]["moved"] is False
    assert stages["export"]["details"]["registered"] == ["quickstart-merged:1", "quickstart-gguf:1"]
    assert doc["stages"][3]["details"]["steps"] == 2 and doc["stages"][4]["details"]["steps"] == 2
    assert doc["stages"][4]["details"]["final_dir"].endswith("dpo/final")
    # The served adapter answered every held-out request (format forced by the JSON schema).
    assert len(stages["serve + query"]["details"]["answers"]) == 5
    # The router sends each prompt to the adapter it was written for (routing reads prompts only).
    rows = stages["route"]["details"]["rows"]
    assert [r["expert"] for r in rows] == [r["expected"] for r in rows] == ["extract", "city"]
    data = doc["stages"][0]["details"]
    assert data["train"]["row_count"] == 40 and data["train"]["kind"] == "conversation"
    assert data["eval"]["kind"] == "prompt" and data["eval"]["row_count"] == 5
    eval_rows = open_dataset_store().rows("quickstart-eval")
    train_sentences = {r["messages"][1]["content"] for r in open_dataset_store().rows("quickstart-train")}
    assert not {r["prompt"][1]["content"] for r in eval_rows} & train_sentences, "eval rows leak into train"
    assert json.loads(eval_rows[0]["answer"]).keys() == {"name", "age", "city"}
    mask = doc["stages"][2]
    assert mask["summary"].endswith("<|im_end|>'") and '"age"' in mask["summary"]
    assert 300_000 < doc["stages"][1]["details"]["parameters"] < 1_200_000

    rerun = json.loads(CliRunner().invoke(app, args).stdout)
    assert rerun["stages"][0]["details"]["train"]["id"] == data["train"]["id"]
    assert "already stored" in rerun["stages"][0]["summary"]
    # Same content again: the registry reuses the versions instead of adding copies.
    assert {s["name"]: s for s in rerun["stages"]}["register"]["details"]["base"] == "quickstart-base:1"


@pytest.mark.slow
@pytest.mark.e2e
def test_full_quickstart_trains_a_clearly_better_model_and_promotes_it(tmp_path: Path) -> None:
    """The default quickstart: the tuned model must beat the base on held-out cases and pass the gate."""
    result = CliRunner().invoke(app, ["quickstart", "--workdir", str(tmp_path / "qs"), "--json"])
    assert result.exit_code == 0, result.output
    stages = {s["name"]: s for s in json.loads(result.stdout)["stages"]}
    scores = stages["evaluate"]["details"]
    assert scores["base"] <= 0.1 and scores["dpo"] >= 0.8
    assert stages["promote"]["details"]["moved"] is True


def test_quickstart_rejects_unknown_preset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["quickstart", "--workdir", str(tmp_path), "--preset", "huge"])
    assert result.exit_code == 1 and "huge" in result.output
