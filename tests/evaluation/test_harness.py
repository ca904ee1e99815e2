"""lm-evaluation-harness: the command we run, the results we read, and a clear Unavailable without it.

A stand-in ``lm_eval`` executable records its arguments and writes a results file the way the harness
does; the real harness needs a served model and network-downloaded task data.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from largeforge.errors import JobFailed, Unavailable
from largeforge.evaluation import run_lm_eval

FAKE_LM_EVAL = """#!{python}
import json, sys, pathlib
args = sys.argv[1:]
out = pathlib.Path(args[args.index("--output_path") + 1]) / "served__model"
out.mkdir(parents=True, exist_ok=True)
(out / "args.json").write_text(json.dumps(args))
if "fail" in args[args.index("--tasks") + 1]:
    sys.exit("task fail is unknown")
(out / "results_2026-01-01T00-00-00.json").write_text(json.dumps({{"results": {{"gsm8k": {{"exact_match,strict-match": 0.25}}}}}}))
"""


def install_fake(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = folder / "bin" / "lm_eval"
    script.parent.mkdir()
    script.write_text(FAKE_LM_EVAL.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


def test_runs_lm_eval_against_the_served_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake(tmp_path, monkeypatch)
    results = run_lm_eval("http://127.0.0.1:8000/v1/", "tiny", ["gsm8k"], tmp_path / "out", limit=5)
    assert results == {"gsm8k": {"exact_match,strict-match": 0.25}}
    args = json.loads((tmp_path / "out" / "served__model" / "args.json").read_text())
    assert args[:4] == ["--model", "local-completions", "--model_args", args[3]]
    assert args[3].split(",") == [
        "model=tiny",
        "base_url=http://127.0.0.1:8000/v1/completions",
        "num_concurrent=1",
        "max_retries=3",
        "tokenized_requests=False",
    ]
    assert args[args.index("--limit") + 1] == "5" and "--apply_chat_template" not in args
    run_lm_eval("http://h/v1", "tiny", ["gsm8k"], tmp_path / "chat", chat=True)
    chat_args = json.loads((tmp_path / "chat" / "served__model" / "args.json").read_text())
    assert chat_args[1] == "local-chat-completions" and "--apply_chat_template" in chat_args
    assert "base_url=http://h/v1/chat/completions" in chat_args[3]


def test_a_failing_harness_reports_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake(tmp_path, monkeypatch)
    with pytest.raises(JobFailed, match="exited with code 1:\ntask fail is unknown"):
        run_lm_eval("http://h/v1", "tiny", ["fail"], tmp_path / "out")


def test_without_lm_eval_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Unavailable, match=r"pip install 'lm-eval\[api\]'"):
        run_lm_eval("http://h/v1", "tiny", ["gsm8k"], tmp_path / "out")
