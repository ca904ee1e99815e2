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

CheckName = Literal["exact", "regex", "json", "json_schema", "length", "python"]


class _CheckConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def columns(self) -> tuple[str, ...]:
        """Row columns this check reads (so callers can refuse data that lacks them before a run)."""
        return ()


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


CheckConfig = Annotated[
    ExactCheckConfig
    | RegexCheckConfig
    | JsonCheckConfig
    | JsonSchemaCheckConfig
    | LengthCheckConfig
    | PythonCheckConfig,
    Field(discriminator="type"),
]

__all__ = [
    "CheckConfig",
    "CheckName",
    "ExactCheckConfig",
    "JsonCheckConfig",
    "JsonSchemaCheckConfig",
    "LengthCheckConfig",
    "PythonCheckConfig",
    "RegexCheckConfig",
]
