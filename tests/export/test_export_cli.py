"""``largeforge export …`` through the CLI: exit codes, --json documents, errors as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from largeforge.cli.main import app

runner = CliRunner()


def invoke_json(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_merge_then_gguf_then_ollama(lora_adapter_dir: Path, tmp_path: Path) -> None:
    merged = invoke_json("export", "merge", str(lora_adapter_dir), str(tmp_path / "merged"))
    assert merged["parity"]["passed"] is True and merged["out_dir"] == str(tmp_path / "merged")
    assert (tmp_path / "merged" / "model.safetensors").exists()

    gguf = invoke_json("export", "gguf", str(tmp_path / "merged"), str(tmp_path / "m.gguf"), "--type", "q8_0")
    assert gguf["type"] == "q8_0" and gguf["architecture"] == "qwen2" and gguf["tensor_count"] == 26
    assert gguf["token_count"] == 300 and Path(gguf["path"]).stat().st_size == gguf["size_bytes"]

    modelfile = invoke_json(
        "export", "ollama", gguf["path"], str(tmp_path / "ollama"), "--system", "Be brief."
    )
    assert Path(modelfile["modelfile"]).read_text().startswith("# Made by LargeForge")
    assert "FROM ./m.gguf" in modelfile["content"] and 'SYSTEM """Be brief."""' in modelfile["content"]


def test_quantize_json_and_human_output(tiny_model_dir: Path, tmp_path: Path) -> None:
    document = invoke_json("export", "quantize", str(tiny_model_dir), str(tmp_path / "int8"))
    assert document["method"] == "int8" and document["quantized_tensors"] == 14
    assert document["parity"]["tolerance"] == 1.0 and document["parity"]["passed"] is True
    human = runner.invoke(app, ["export", "gguf", str(tiny_model_dir), str(tmp_path / "m.gguf")])
    assert human.exit_code == 0, human.output
    assert "GGUF file" in human.stdout and "qwen2" in human.stdout


def test_errors_exit_1_with_a_json_error(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_type = invoke_json(
        "export", "gguf", str(tiny_model_dir), str(tmp_path / "x.gguf"), "--type", "q2", code=1
    )
    assert (
        wrong_type["error"]["code"] == "invalid_input" and "f32, f16, q8_0" in wrong_type["error"]["message"]
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gpu = invoke_json(
        "export", "quantize", str(tiny_model_dir), str(tmp_path / "q"), "--method", "bnb4", code=1
    )
    assert gpu["error"]["code"] == "unavailable"
    missing = invoke_json("export", "merge", str(tmp_path / "nope"), str(tmp_path / "out"), code=1)
    assert missing["error"]["code"] == "not_found"
    not_gguf = invoke_json(
        "export", "ollama", str(tiny_model_dir / "config.json"), str(tmp_path / "o"), code=1
    )
    assert not_gguf["error"]["code"] == "invalid_input"
    human = runner.invoke(app, ["export", "merge", str(tiny_model_dir), str(tmp_path / "out")])
    assert human.exit_code == 1 and "not a PEFT adapter" in human.output
    usage = runner.invoke(app, ["export", "gguf"])
    assert usage.exit_code == 2
    assert not any(p.name in {"x.gguf", "q", "out", "o"} for p in tmp_path.iterdir())


def test_exports_are_registered_with_their_lineage(lora_adapter_dir: Path, tmp_path: Path) -> None:
    adapter = invoke_json("models", "register", str(lora_adapter_dir), "--name", "tiny-sft")
    assert adapter["kind"] == "adapter"
    merged = invoke_json("export", "merge", str(lora_adapter_dir), str(tmp_path / "merged"))
    assert merged["registered"] == "tiny-sft-merged:1"  # named after the registered source
    gguf = invoke_json(
        "export", "gguf", str(tmp_path / "merged"), str(tmp_path / "m.gguf"), "--register-as", "tiny-gguf"
    )
    assert gguf["registered"] == "tiny-gguf:1"
    lineage = invoke_json("models", "lineage", "tiny-gguf:1")
    assert lineage["kind"] == "gguf"
    assert (
        lineage["parents"][0]["ref"] == "tiny-sft-merged:1"
        and lineage["parents"][0]["relation"] == "converted-from"
    )
    assert lineage["parents"][0]["parents"][0]["ref"] == "tiny-sft:1"
    version = invoke_json("models", "show", "tiny-sft-merged:1")
    assert version["kind"] == "merged" and version["metrics"]["parity/max_abs_logit_diff"] < 1e-3


def test_an_unregistered_source_is_not_registered(tiny_model_dir: Path, tmp_path: Path) -> None:
    gguf = invoke_json("export", "gguf", str(tiny_model_dir), str(tmp_path / "t.gguf"))
    assert gguf["registered"] is None
