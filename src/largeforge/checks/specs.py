"""The configuration of each check: what a recipe, an evaluation suite or the API writes down.

Everything that can be wrong with a check's own settings (a regex that does not compile, a schema that
is not a JSON schema, an empty length window, a malformed function reference) is refused here, while
the config is validated, so a run never dies on it mid-training. Whether a referenced user function
exists is checked when the check is built (``largeforge.checks.build_check``), because importing user
code while parsing a recipe would run that code inside the API process.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CheckName = Literal[
    "exact", "regex", "json", "json_schema", "length", "python", "contains", "numeric", "judge"
]


class _CheckConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def columns(self) -> tuple[str, ...]:
        """Row columns this check reads (so callers can refuse data that lacks them before a run)."""
        return ()

    def pass_score(self) -> float:
        """The score at or above which a completion counts as passing this check.

        Deterministic checks score 1.0 or 0.0 (a python check may give partial credit, which does not
        pass); a judge scores on a scale and sets its own threshold.
        """
        return 1.0


class ExactCheckConfig(_CheckConfig):
    type: Literal["exact"] = Field("exact", description="Passes when the completion equals a column.")
    column: str = Field("answer", description="Row column holding the expected text.")
    normalize_whitespace: bool = Field(
        False, description="Collapse runs of whitespace to one space on both sides before comparing."
    )

    def columns(self) -> tuple[str, ...]:
        return (self.column,)


class RegexCheckConfig(_CheckConfig):
    type: Literal["regex"] = Field("regex", description="Passes when the completion matches a pattern.")
    pattern: str = Field(description="Python regular expression.")
    fullmatch: bool = Field(
        False, description="Require the whole (stripped) completion to match, not just a part of it."
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
        return pattern


class JsonCheckConfig(_CheckConfig):
    type: Literal["json"] = Field(
        "json",
        description="Without column: passes when the completion parses as JSON (json_valid). "
        "With column: passes only when the parsed completion equals the column's parsed JSON (json_match).",
    )
    column: str | None = Field(
        None, description="Row column holding the expected JSON (text or an object); None = only parse."
    )

    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column else ()


class JsonSchemaCheckConfig(_CheckConfig):
    type: Literal["json_schema"] = Field(
        "json_schema", description="Passes when the completion parses as JSON and fits a JSON schema."
    )
    json_schema: dict[str, Any] = Field(description="The JSON schema (any draft jsonschema knows).")

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import SchemaError
        from jsonschema.validators import validator_for

        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(top level)"
            raise ValueError(f"not a valid JSON schema at {where}: {exc.message}") from exc
        return schema


class LengthCheckConfig(_CheckConfig):
    type: Literal["length"] = Field(
        "length", description="Passes when the stripped completion's length lies in [min, max]."
    )
    unit: Literal["characters", "words"] = Field(
        "characters", description="Count characters, or whitespace-separated words (no tokenizer needed)."
    )
    min: int | None = Field(None, ge=0, description="Smallest accepted length (inclusive); None = no floor.")
    max: int | None = Field(None, ge=0, description="Largest accepted length (inclusive); None = no ceiling.")

    @model_validator(mode="after")
    def _window_is_sensible(self) -> LengthCheckConfig:
        if self.min is None and self.max is None:
            raise ValueError("a length check needs min, max or both; without them it passes everything")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); no length can pass")
        return self


class PythonCheckConfig(_CheckConfig):
    type: Literal["python"] = Field(
        "python", description="Your own function: (completion: str, row: dict) -> float in [0, 1] or bool."
    )
    function: str = Field(
        description='"package.module:function" (importable) or "path/to/file.py:function" (loaded from the file).'
    )

    @field_validator("function")
    @classmethod
    def _reference_has_two_parts(cls, function: str) -> str:
        where, _, name = function.rpartition(":")
        if not where or not name.isidentifier():
            raise ValueError(f"{function!r} must look like module:function or path/to/file.py:function")
        return function


class ContainsCheckConfig(_CheckConfig):
    type: Literal["contains"] = Field(
        "contains", description="Passes when the completion contains a substring (or any/all of several)."
    )
    value: str | list[str] | None = Field(
        None, description="The substring, or a list of them; give this or column."
    )
    column: str | None = Field(
        None, description="Row column holding the substring (text or a list of texts); give this or value."
    )
    mode: Literal["any", "all"] = Field(
        "any", description="With several substrings: pass when any of them occurs, or only when all do."
    )
    ignore_case: bool = Field(False, description="Compare case-insensitively.")

    @model_validator(mode="after")
    def _one_source(self) -> ContainsCheckConfig:
        if (self.value is None) == (self.column is None):
            raise ValueError("a contains check needs exactly one of value (the text) or column (where it is)")
        if isinstance(self.value, list) and not self.value:
            raise ValueError("value is an empty list; give at least one substring")
        if self.value == "":
            raise ValueError("value is empty; every completion contains the empty string")
        return self

    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column else ()


class NumericCheckConfig(_CheckConfig):
    type: Literal["numeric"] = Field(
        "numeric",
        description="Passes when the first number in the completion equals the expected number within a tolerance.",
    )
    column: str = Field("answer", description="Row column holding the expected number (a number or text).")
    tolerance: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="Largest accepted difference (0 = exactly equal)."
    )
    relative: bool = Field(
        False, description="Read tolerance as a fraction of the expected value (0.01 = within 1 %)."
    )

    def columns(self) -> tuple[str, ...]:
        return (self.column,)


class JudgeCheckConfig(_CheckConfig):
    type: Literal["judge"] = Field(
        "judge",
        description="An LLM grades the completion against a rubric; the score is normalised to [0, 1].",
    )
    rubric: str = Field(min_length=1, description="What a good answer looks like, in words for the judge.")
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint of the judge, e.g. http://localhost:8000/v1."
    )
    model: str | None = Field(None, description="Model name the endpoint serves (with base_url).")
    api_key_env: str | None = Field(
        None, description="Environment variable holding the endpoint's API key (none for local servers)."
    )
    model_dir: str | None = Field(
        None, description="A local model directory to judge in-process instead of an endpoint."
    )
    scale: tuple[int, int] = Field((1, 5), description="Lowest and highest score the judge may give.")
    pass_threshold: float | None = Field(
        None, description="Score (on the scale) that passes; default: the middle of the scale, rounded up."
    )
    prompt_column: str = Field(
        "prompt",
        description="Row column with the question the completion answers (shown to the judge if present).",
    )
    reference_column: str | None = Field(
        None, description="Row column with a reference answer to show the judge; None = no reference."
    )
    max_tokens: int = Field(64, gt=0, description="Longest reply the judge may write.")

    @model_validator(mode="after")
    def _judge_is_reachable_and_scaled(self) -> JudgeCheckConfig:
        endpoint = self.base_url is not None or self.model is not None
        if endpoint == (self.model_dir is not None):
            raise ValueError("a judge needs either base_url and model (an endpoint) or model_dir, not both")
        if endpoint and (self.base_url is None or self.model is None):
            raise ValueError("an endpoint judge needs both base_url and model")
        if self.api_key_env is not None and not endpoint:
            raise ValueError("api_key_env only applies to an endpoint judge (base_url)")
        low, high = self.scale
        if low >= high:
            raise ValueError(f"scale {list(self.scale)} must go from a lower to a higher score, e.g. [1, 5]")
        if self.pass_threshold is not None and not low <= self.pass_threshold <= high:
            raise ValueError(
                f"pass_threshold {self.pass_threshold} lies outside the scale {list(self.scale)}"
            )
        return self

    def threshold(self) -> float:
        """The passing score on the judge's own scale."""
        low, high = self.scale
        return self.pass_threshold if self.pass_threshold is not None else float(-(-(low + high) // 2))

    def pass_score(self) -> float:
        low, high = self.scale
        return (self.threshold() - low) / (high - low)

    def columns(self) -> tuple[str, ...]:
        return (self.reference_column,) if self.reference_column else ()


CheckConfig = Annotated[
    ExactCheckConfig
    | RegexCheckConfig
    | JsonCheckConfig
    | JsonSchemaCheckConfig
    | LengthCheckConfig
    | PythonCheckConfig
    | ContainsCheckConfig
    | NumericCheckConfig
    | JudgeCheckConfig,
    Field(discriminator="type"),
]

__all__ = [
    "CheckConfig",
    "CheckName",
    "ContainsCheckConfig",
    "ExactCheckConfig",
    "JsonCheckConfig",
    "JsonSchemaCheckConfig",
    "JudgeCheckConfig",
    "LengthCheckConfig",
    "NumericCheckConfig",
    "PythonCheckConfig",
    "RegexCheckConfig",
]
