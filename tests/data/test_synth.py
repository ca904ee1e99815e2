"""Synthetic data with a real local teacher and with an OpenAI-compatible endpoint.

The endpoint is faked with a MockTransport: it stands for a paid provider that cannot run here.
openai 3.x speaks httpx2, so the fake transport is an httpx2 one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from largeforge.data.reading import read_dataset
from largeforge.data.synth import (
    EndpointTeacher,
    LocalTeacher,
    SynthConfig,
    read_seed_prompts,
    save_rows,
    synthesize,
)
from largeforge.errors import InvalidInput, NotFound, Unavailable
from tests.fake_openai import fake_chat_client

BASE_URL = "http://provider.test/v1"


fake_endpoint = fake_chat_client


def numbered_answers() -> Callable[[dict[str, Any]], str]:
    count = {"n": 0}

    def reply(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"].startswith("You compare"):
            return "B"
        count["n"] += 1
        return f"answer {count['n']}"

    return reply


def test_endpoint_conversation_request_and_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDER_KEY", "sk-test")
    seen: list[httpx2.Request] = []
    teacher = EndpointTeacher(
        BASE_URL, "big-model", api_key_env="PROVIDER_KEY", http_client=fake_endpoint(numbered_answers(), seen)
    )
    config = SynthConfig(samples_per_prompt=2, temperature=0.3, max_tokens=17, system_prompt="Be brief")
    result = synthesize(["What is 2+2?"], teacher, config)
    assert [r["messages"][-1]["content"] for r in result.rows] == ["answer 1", "answer 2"]
    assert result.rows[0]["messages"][:2] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    body = json.loads(seen[0].content)
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("big-model", 0.3, 17)
    assert seen[0].headers["authorization"] == "Bearer sk-test"
    assert str(seen[0].url) == f"{BASE_URL}/chat/completions"


def test_preference_with_judge_picks_the_judged_answer() -> None:
    teacher = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(numbered_answers(), []))
    result = synthesize(["Q?"], teacher, SynthConfig(kind="preference"))
    row = result.rows[0]
    assert row["chosen"] == [{"role": "assistant", "content": "answer 2"}]  # the judge said B
    assert row["rejected"] == [{"role": "assistant", "content": "answer 1"}]
    assert row["prompt"] == [{"role": "user", "content": "Q?"}]


def test_preference_rows_validate_as_preference_data(tmp_path: Path) -> None:
    teacher = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(numbered_answers(), []))
    result = synthesize(["Q1?", "Q2?"], teacher, SynthConfig(kind="preference"))
    dataset = read_dataset(save_rows(result.rows, tmp_path / "pairs.jsonl"))
    assert dataset.report.ok and dataset.format == "preference" and len(dataset.rows) == 2


def test_unparseable_verdict_skips_with_a_reason() -> None:
    def reply(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"].startswith("You compare"):
            return "both are fine"
        return numbered(body)

    numbered = numbered_answers()
    teacher = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(reply, []))
    result = synthesize(["Q?"], teacher, SynthConfig(kind="preference"))
    assert result.rows == [] and result.skipped == 1 and "no A/B verdict" in result.reasons[0]


def test_identical_candidates_skip_without_asking_the_judge() -> None:
    seen: list[httpx2.Request] = []
    teacher = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(lambda body: "same", seen))
    result = synthesize(["Q?"], teacher, SynthConfig(kind="preference"))
    assert result.rows == [] and result.skipped == 1 and "identical" in result.reasons[0]
    assert len(seen) == 2  # two candidates, no judge call


@pytest.mark.parametrize(
    ("verdict", "chosen"),
    [
        ("It's a close call, but B", "answer 2"),
        ("a", "answer 1"),
        (" B.", "answer 2"),
        ("A is better", "answer 1"),
    ],
)
def test_verdict_parsing(verdict: str, chosen: str) -> None:
    def reply(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"].startswith("You compare"):
            return verdict
        return numbered(body)

    numbered = numbered_answers()
    teacher = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(reply, []))
    row = synthesize(["Q?"], teacher, SynthConfig(kind="preference")).rows[0]
    assert row["chosen"][0]["content"] == chosen
    assert row["rejected"][0]["content"] == ({"answer 1", "answer 2"} - {chosen}).pop()


def test_rejected_model_strategy() -> None:
    good = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(lambda body: "good", []))
    bad = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(lambda body: "bad", []))
    config = SynthConfig(kind="preference", preference_strategy="rejected_model")
    row = synthesize(["Q?"], good, config, rejected_teacher=bad).rows[0]
    assert (row["chosen"][0]["content"], row["rejected"][0]["content"]) == ("good", "bad")
    with pytest.raises(InvalidInput, match="rejected teacher"):
        synthesize(["Q?"], good, config)


def test_provider_errors_are_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDER_KEY", "sk-wrong")
    refused = EndpointTeacher(
        BASE_URL,
        "m",
        api_key_env="PROVIDER_KEY",
        http_client=fake_endpoint(str, [], status=401),
        max_retries=0,
    )
    with pytest.raises(InvalidInput, match=r"\$PROVIDER_KEY"):
        refused.complete([{"role": "user", "content": "x"}], temperature=0, max_tokens=1)

    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    down = EndpointTeacher(
        BASE_URL, "m", http_client=httpx2.Client(transport=httpx2.MockTransport(unreachable)), max_retries=0
    )
    with pytest.raises(Unavailable, match="cannot reach"):
        down.complete([{"role": "user", "content": "x"}], temperature=0, max_tokens=1)


def test_missing_api_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(InvalidInput, match="NO_SUCH_KEY is not set"):
        EndpointTeacher(BASE_URL, "m", api_key_env="NO_SUCH_KEY")


def test_local_teacher_generates_from_a_real_model(tiny_model_dir: Path) -> None:
    teacher = LocalTeacher(tiny_model_dir)
    answer = teacher.complete([{"role": "user", "content": "Hi"}], temperature=0.0, max_tokens=5)
    again = teacher.complete([{"role": "user", "content": "Hi"}], temperature=0.0, max_tokens=5)
    assert isinstance(answer, str) and answer == again  # greedy decoding is deterministic
    config = SynthConfig(samples_per_prompt=2, temperature=1.0, max_tokens=5, system_prompt="Be kind")
    result = synthesize(["Hi", "Bye"], teacher, config)
    assert len(result.rows) + result.skipped == 4 and len(result.reasons) == result.skipped
    # Sampling 5 tokens at temperature 1 from a random 300-token vocabulary is never all whitespace.
    assert result.rows
    for row in result.rows:
        system, user, assistant = row["messages"]
        assert system == {"role": "system", "content": "Be kind"}
        assert user["role"] == "user" and user["content"] in {"Hi", "Bye"}
        assert assistant["role"] == "assistant" and assistant["content"].strip()


def test_local_teacher_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        LocalTeacher(tiny_model_dir.parent / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}', encoding="utf-8")
    with pytest.raises(InvalidInput, match="cannot load teacher model"):
        LocalTeacher(broken)


class RecordingProgress:
    """An in-process reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, int | None]] = []
        self.advanced = 0

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Any]:
        self.tasks.append((description, total))
        yield self

    def advance(self, steps: int = 1, **fields: Any) -> None:
        self.advanced += steps


def test_progress_counts_prompts_times_samples() -> None:
    teacher = EndpointTeacher(BASE_URL, "m", http_client=fake_endpoint(numbered_answers(), []))
    progress = RecordingProgress()
    synthesize(["a", "b", "c"], teacher, SynthConfig(samples_per_prompt=2), progress=progress)
    assert progress.tasks == [("Generating", 6)] and progress.advanced == 6


def test_seed_prompts_from_txt_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("one\n\n two \n", encoding="utf-8")
    assert read_seed_prompts(tmp_path / "s.txt") == ["one", "two"]
    rows = [{"prompt": "a"}, {"prompt": [{"role": "user", "content": "b"}]}, {"other": "c"}]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert read_seed_prompts(tmp_path / "s.jsonl") == ["a", "b"]
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no seed prompts"):
        read_seed_prompts(tmp_path / "empty.txt")
    with pytest.raises(NotFound):
        read_seed_prompts(tmp_path / "missing.txt")


def test_seed_prompts_from_messages_json_and_broken_lines(tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "first"}, {"role": "user", "content": "last"}]}
    (tmp_path / "s.json").write_text(json.dumps([chat, {"prompt": "p"}]), encoding="utf-8")
    assert read_seed_prompts(tmp_path / "s.json") == ["last", "p"]
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="line 2"):
        read_seed_prompts(tmp_path / "bad.jsonl")


def test_save_rows_round_trips_unicode(tmp_path: Path) -> None:
    rows = [{"text": "zoë ✓"}, {"text": "two"}]
    path = save_rows(rows, tmp_path / "sub" / "rows.jsonl")
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == rows
    assert "zoë ✓" in path.read_text(encoding="utf-8")
