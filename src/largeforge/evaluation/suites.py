"""Evaluation suites: the YAML that says what to ask a model and how to score its answers.

    name: extraction
    system: Extract name, age and city as JSON.
    cases_from: examples/data/extraction-prompts.jsonl     # prompt rows; expected from column `answer`
    cases:
      - {id: lima, prompt: "In {city} lives Jonas Ito, who is 30.", vars: {city: Lima}, expected: ...}
    checks:
      - {type: json, name: json_valid}
      - {type: json, column: expected, weight: 2}
    metrics: [bleu, rouge]

Owns the schema (pydantic, ``extra="forbid"``, every problem reported at once with its YAML path),
reading cases from a dataset, and the suite's digest (what "the same suite" means when results are
reused). Scoring belongs to ``largeforge.checks``; running to ``runner.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from largeforge.checks import CheckConfig
from largeforge.errors import InvalidInput, NotFound

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MetricName = Literal["bleu", "rouge"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Spec):
    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="What they say; {var} placeholders are filled from the case's vars.")


class GenerationConfig(_Spec):
    max_tokens: int = Field(128, gt=0, description="Longest completion the model may write per case.")
    temperature: float = Field(
        0.0, ge=0, description="Sampling temperature; 0 = greedy decoding (reproducible scores)."
    )


class SuiteCase(_Spec):
    id: str = Field(min_length=1, description="Unique name of the case within the suite.")
    prompt: str | None = Field(None, description="The user's message (give this or messages).")
    messages: list[Message] | None = Field(
        None, description="A whole conversation ending with the user's turn (give this or prompt)."
    )
    expected: Any = Field(None, description="The reference answer; checks read it as column `expected`.")
    vars: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Values substituted into {name} placeholders of the prompt."
    )
    data: dict[str, Any] = Field(
        default_factory=dict, description="Extra columns handed to checks (python checks, judges)."
    )

    @model_validator(mode="after")
    def _one_prompt(self) -> SuiteCase:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a case needs exactly one of prompt (text) or messages (a conversation)")
        if self.messages is not None and (not self.messages or self.messages[-1].role != "user"):
            raise ValueError("messages must end with the user's turn, which the model answers")
        return self


class CasesFrom(_Spec):
    dataset: str = Field(
        description="A prompt-kind dataset file (JSONL, CSV …) or stored version (id, NAME, NAME@N)."
    )
    expected: str = Field("answer", description="Column holding each row's reference answer.")
    limit: int | None = Field(None, gt=0, description="Use only the first N rows.")

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, value: Any) -> Any:
        return {"dataset": value} if isinstance(value, str) else value


class SuiteCheck(_Spec):
    """One check of a suite: written flat in YAML (``{type: exact, column: expected, weight: 2}``)."""

    name: str | None = Field(
        None, description="Name in results and gates (check/<name>); default: the type, numbered if repeated."
    )
    weight: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="Share of this check in a case's score."
    )
    check: CheckConfig = Field(description="The check's own settings (see largeforge.checks).")

    @model_validator(mode="before")
    @classmethod
    def _split_flat(cls, value: Any) -> Any:
        if isinstance(value, dict) and "check" not in value:
            rest = {k: v for k, v in value.items() if k not in ("name", "weight")}
            return {**{k: value[k] for k in ("name", "weight") if k in value}, "check": rest}
        return value


class Suite(_Spec):
    name: str = Field(description="Suite name; results and registry metrics are filed under it.")
    description: str | None = Field(None, description="What the suite measures, for people.")
    system: str | None = Field(
        None, description="System prompt put before every case that does not bring its own."
    )
    generation: GenerationConfig = Field(
        default_factory=GenerationConfig, description="How completions are generated."
    )
    cases: list[SuiteCase] = Field(default_factory=list, description="Cases written in the suite.")
    cases_from: CasesFrom | None = Field(
        None, description="More cases read from a prompt dataset (a path, or {dataset, expected, limit})."
    )
    checks: list[SuiteCheck] = Field(min_length=1, description="How each completion is scored.")
    metrics: list[MetricName] = Field(
        default_factory=list, description="Corpus metrics against `expected`: bleu (sacrebleu), rouge."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        if not _NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not self.cases and self.cases_from is None:
            raise ValueError("a suite needs cases, cases_from or both")
        ids = [case.id for case in self.cases]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"case ids must be unique; repeated: {', '.join(repeated)}")
        _name_checks(self.checks)
        return self

    def check_names(self) -> list[str]:
        return [str(check.name) for check in self.checks]


def _name_checks(checks: list[SuiteCheck]) -> None:
    """Give unnamed checks their type (a python check its function) and number repeats: json, json_2."""
    seen: set[str] = {c.name for c in checks if c.name is not None}
    for index, entry in enumerate(checks):
        if entry.name is not None:
            if not _NAME.match(entry.name):
                raise ValueError(
                    f"checks.{index}.name {entry.name!r} must be letters, digits, '.', '_' or '-'"
                )
            continue
        config = entry.check
        base = config.function.rpartition(":")[2] if config.type == "python" else config.type
        name, number = base, 1
        while name in seen:
            number += 1
            name = f"{base}_{number}"
        entry.name = name
        seen.add(name)
    names = [c.name for c in checks]
    repeated = sorted({str(n) for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"check names must be unique; repeated: {', '.join(repeated)}")


def format_errors(error: ValidationError) -> str:
    """Every problem on its own line as ``path.in.yaml: message``, with check unions flattened.

    Pydantic reports a check's field as ``checks.0.check.regex.pattern`` (our nesting plus the union's
    tag); the user wrote ``checks.0.pattern``.
    """
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if len(loc) >= 3 and loc[0] == "checks" and loc[2] == "check":
            loc = loc[:2] + (["type"] if item["type"].startswith("union_tag") else loc[4:])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a suite field (check the spelling)"
        lines.append(f"  {'.'.join(loc) or '(suite)'}: {message}")
    return "\n".join(lines)


def validate_suite(document: Any) -> Suite:
    """A suite from a parsed document (cases_from not read yet).

    Raises:
        InvalidInput: not a mapping, or invalid fields (all listed with their paths).
    """
    if not isinstance(document, dict):
        raise InvalidInput("a suite is a YAML mapping with at least name, cases (or cases_from) and checks")
    try:
        return Suite.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(f"the suite has {exc.error_count()} problem(s):\n{format_errors(exc)}") from exc


def load_suite(path: str | Path) -> Suite:
    """Read, validate and resolve a suite file: ``cases_from`` rows become cases, columns are checked.

    A relative ``cases_from`` path is looked up from the current directory first (like recipe data
    paths), then next to the suite file.

    Raises:
        NotFound: no such file or dataset. InvalidInput: bad YAML, an invalid suite, a dataset that is
            not prompt data, or a check reading a column some case lacks.
    """
    from largeforge.evaluation.cases import resolve_cases
    from largeforge.yaml_files import read_yaml_file

    missing = NotFound(
        f"suite {Path(path).expanduser()} does not exist; see examples/suites/ for one to start from"
    )
    document, source = read_yaml_file(path, missing)
    return resolve_cases(validate_suite(document), base_dir=source.resolve().parent)


def suite_digest(suite: Suite) -> str:
    """sha256 of the resolved suite's canonical JSON: equal digests mean equal questions and scoring."""
    canonical = json.dumps(suite.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


__all__ = [
    "CasesFrom",
    "GenerationConfig",
    "Message",
    "MetricName",
    "Suite",
    "SuiteCase",
    "SuiteCheck",
    "format_errors",
    "load_suite",
    "suite_digest",
    "validate_suite",
]
