"""contains, numeric and judge: a pass and a fail each, their config errors, and the judge's plumbing
against a real in-process model, a scripted teacher and a mocked OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx2
import pytest

from largeforge.checks import build_check, parse_check_config
from largeforge.checks.judge import judge_messages, make_judge, normalise_score, parse_score, teacher_for
from largeforge.data.teachers import EndpointTeacher, LocalTeacher
from largeforge.errors import InvalidInput

ROW = {"answer": "42", "cities": ["Paris", "Lima"], "prompt": "How many?"}


def score(document: dict[str, Any], completion: str, row: dict[str, Any] = ROW) -> float:
    return build_check(parse_check_config(document))(completion, row)


@pytest.mark.parametrize(
    ("document", "completion", "expected"),
    [
        ({"type": "contains", "value": "Paris"}, "She lives in Paris.", 1.0),
        ({"type": "contains", "value": "Paris"}, "She lives in paris.", 0.0),
        ({"type": "contains", "value": "Paris", "ignore_case": True}, "She lives in PARIS.", 1.0),
        ({"type": "contains", "value": ["Oslo", "Lima"]}, "Lima", 1.0),
        ({"type": "contains", "value": ["Oslo", "Lima"], "mode": "all"}, "Lima", 0.0),
        ({"type": "contains", "value": ["Oslo", "Lima"], "mode": "all"}, "Lima, then Oslo", 1.0),
        ({"type": "contains", "column": "cities", "mode": "all"}, "Paris and Lima", 1.0),
        ({"type": "contains", "column": "answer"}, "the answer is 41", 0.0),
        ({"type": "numeric"}, "The answer is 42.", 1.0),
        ({"type": "numeric"}, "The answer is 43.", 0.0),
        ({"type": "numeric"}, "no number here", 0.0),
        ({"type": "numeric", "tolerance": 1}, "about 43", 1.0),
        ({"type": "numeric", "tolerance": 1}, "about 43.5", 0.0),
        ({"type": "numeric", "tolerance": 0.01, "relative": True}, "42.42", 1.0),
        ({"type": "numeric", "tolerance": 0.01, "relative": True}, "42.5", 0.0),
        # Only the first number counts: a model that hedges with several numbers is judged by its first.
        ({"type": "numeric"}, "41 or 42", 0.0),
    ],
)
def test_contains_and_numeric_pass_and_fail(
    document: dict[str, Any], completion: str, expected: float
) -> None:
    assert score(document, completion) == expected


def test_numeric_reads_text_and_number_columns() -> None:
    check = {"type": "numeric", "column": "gold"}
    assert score(check, "It costs 1,234.50 dollars", {"gold": "#### 1234.5"}) == 1.0
    assert score(check, "-3", {"gold": -3}) == 1.0
    with pytest.raises(InvalidInput, match="has no number to compare with"):
        score(check, "3", {"gold": "three"})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "contains"}, "exactly one of value"),
        ({"type": "contains", "value": "a", "column": "b"}, "exactly one of value"),
        ({"type": "contains", "value": []}, "empty list"),
        ({"type": "numeric", "tolerance": -1}, "tolerance: Input should be greater than or equal to 0"),
        ({"type": "judge", "rubric": "x"}, "either base_url and model"),
        ({"type": "judge", "rubric": "x", "base_url": "http://h/v1"}, "needs both base_url and model"),
        (
            {"type": "judge", "rubric": "x", "model_dir": "m", "api_key_env": "K"},
            "only applies to an endpoint",
        ),
        ({"type": "judge", "rubric": "x", "model_dir": "m", "scale": [5, 1]}, "from a lower to a higher"),
        ({"type": "judge", "rubric": "x", "model_dir": "m", "pass_threshold": 9}, "outside the scale"),
    ],
)
def test_bad_new_configs_are_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_check_config(document)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Score: 4", 4.0),
        ("**Score:** 5", 5.0),
        ("I would give it 3/5.", 3.0),
        ("2 out of 5 — it misses the city", 2.0),
        ("The answer names 7 fields and is mostly right. 4", 4.0),  # 7 is off the scale
        ("score: 9", None),
        ("no idea", None),
    ],
)
def test_scores_are_read_from_free_text(reply: str, expected: float | None) -> None:
    assert parse_score(reply, (1, 5)) == expected


def test_scores_are_normalised_and_the_default_threshold_is_mid_scale() -> None:
    config = parse_check_config({"type": "judge", "rubric": "r", "model_dir": "m"})
    assert [normalise_score(v, (1, 5)) for v in (1, 3, 4, 5)] == [0.0, 0.5, 0.75, 1.0]
    assert config.threshold() == 3 and config.pass_score() == 0.5
    ten = parse_check_config(
        {"type": "judge", "rubric": "r", "model_dir": "m", "scale": [0, 10], "pass_threshold": 7}
    )
    assert ten.pass_score() == 0.7


class ScriptedTeacher:
    """A judge that replies from a script and records what it was asked (the scorer the tiny model cannot be)."""

    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.asked: list[list[dict[str, str]]] = []

    def complete(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int) -> str:
        self.asked.append(messages)
        return self.reply


def test_judge_prompt_carries_rubric_question_reference_and_answer() -> None:
    config = parse_check_config(
        {"type": "judge", "rubric": "Must name the city.", "model_dir": "m", "reference_column": "answer"}
    )
    teacher = ScriptedTeacher("Reasoning... Score: 4")
    assert (
        make_judge(config, teacher)(
            "Paris", {"prompt": [{"role": "user", "content": "Where?"}], "answer": "Lima"}
        )
        == 0.75
    )
    user = teacher.asked[0][-1]["content"]
    for part in (
        "Rubric:\nMust name the city.",
        "Question:\nuser: Where?",
        "Reference answer:\nLima",
        "Answer to grade:\nParis",
        "from 1 (worst) to 5 (best)",
    ):
        assert part in user


def test_an_unreadable_judge_reply_fails_the_case_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    config = parse_check_config({"type": "judge", "rubric": "r", "model_dir": "m"})
    with caplog.at_level(logging.WARNING, logger="largeforge.checks.judge"):
        assert make_judge(config, ScriptedTeacher("I cannot grade this."))("x", {}) == 0.0
    assert "gave no score" in caplog.text and "I cannot grade this." in caplog.text


class RecordingLocalTeacher(LocalTeacher):
    """The real local model, with the conversation and its reply kept for the assertions."""

    def complete(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int) -> str:
        self.messages = messages
        self.reply = super().complete(messages, temperature=temperature, max_tokens=max_tokens)
        return self.reply


def test_local_judge_runs_the_model_in_process(tiny_model_dir: Path) -> None:
    config = parse_check_config(
        {"type": "judge", "rubric": "Be correct.", "model_dir": str(tiny_model_dir), "max_tokens": 6}
    )
    assert isinstance(teacher_for(config), LocalTeacher)
    teacher = RecordingLocalTeacher(tiny_model_dir)
    first = make_judge(config, teacher)("Paris", {"prompt": "Capital of France?"})
    # A 60k-parameter model cannot grade; what it writes is parsed like any judge's reply.
    parsed = parse_score(teacher.reply, (1, 5))
    assert first == (0.0 if parsed is None else normalise_score(parsed, (1, 5)))
    assert "Rubric:\nBe correct." in teacher.messages[-1]["content"]
    assert (
        make_judge(config, teacher)("Paris", {"prompt": "Capital of France?"}) == first
    )  # greedy: same verdict


def test_endpoint_judge_through_openai_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "sk-judge")
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        message = {"role": "assistant", "content": "The answer is right but terse. **Score:** 4/5"}
        return httpx2.Response(
            200,
            json={
                "id": "j",
                "object": "chat.completion",
                "created": 0,
                "model": "judge-1",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            },
        )

    document = {
        "type": "judge",
        "rubric": "Correct city.",
        "base_url": "http://judge.test/v1",
        "model": "judge-1",
        "api_key_env": "JUDGE_KEY",
        "pass_threshold": 4,
    }
    config = parse_check_config(document)
    assert isinstance(teacher_for(config), EndpointTeacher)
    teacher = EndpointTeacher(
        "http://judge.test/v1",
        "judge-1",
        api_key_env="JUDGE_KEY",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    value = make_judge(config, teacher)("Paris", {"prompt": "Capital of France?"})
    assert value == 0.75 and value >= config.pass_score()
    body = json.loads(seen[0].content)
    assert body["model"] == "judge-1" and body["temperature"] == 0.0
    assert body["messages"] == judge_messages(config, "Paris", {"prompt": "Capital of France?"})
    assert seen[0].headers["authorization"] == "Bearer sk-judge"
