"""The recipe: one YAML format for every method, validated by pydantic, the single input of the CLI,
the API and the UI.

``method`` selects the recipe class (a discriminated union), ``--set a.b=value`` overrides fields,
and every validation error is reported at once with the YAML path of the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, TypeAdapter, ValidationError

from largeforge.errors import InvalidInput, NotFound
from largeforge.training.methods import METHODS
from largeforge.training.methods.custom import CustomRecipe
from largeforge.training.methods.distill import DistillRecipe
from largeforge.training.methods.dpo import DPORecipe
from largeforge.training.methods.grpo import GRPORecipe
from largeforge.training.methods.kto import KTORecipe
from largeforge.training.methods.orpo import ORPORecipe
from largeforge.training.methods.pretrain import PretrainRecipe
from largeforge.training.methods.sft import SFTRecipe

Recipe = Annotated[
    PretrainRecipe
    | SFTRecipe
    | DPORecipe
    | ORPORecipe
    | KTORecipe
    | GRPORecipe
    | DistillRecipe
    | CustomRecipe,
    Field(discriminator="method"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Recipe)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"training.learning_rate=1e-3"`` → (["training", "learning_rate"], 0.001); values are YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"--set {text!r} must look like PATH=VALUE, e.g. --set training.max_steps=20")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(document: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = document
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidInput(f"--set {text!r}: {part} is a value, not a section")
            node = child
        node[path[-1]] = value
    return document


def format_errors(error: ValidationError, method: Any) -> str:
    """Every problem on one line each, as ``path.in.yaml: message``."""
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if loc and loc[0] == method:
            loc = loc[1:]  # the union's tag, not a field the user wrote
        where = ".".join(loc) or "(recipe)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a recipe field (check the spelling; `largeforge train schema` lists them)"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def validate_recipe(document: Any) -> Any:
    """A recipe object from a parsed document.

    Raises:
        InvalidInput: not a mapping, unknown method, or invalid fields (all listed with their paths).
    """
    if not isinstance(document, dict):
        raise InvalidInput("a recipe is a YAML mapping with at least method, model and data.train")
    method = document.get("method")
    if method not in METHODS:
        raise InvalidInput(f"method: {method!r} is not a training method; use one of {', '.join(METHODS)}")
    try:
        return _ADAPTER.validate_python(document)
    except ValidationError as exc:
        raise InvalidInput(
            f"the recipe has {exc.error_count()} problem(s):\n{format_errors(exc, method)}"
        ) from exc


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Any:
    """Read a YAML recipe file, apply ``--set`` overrides, validate.

    Raises:
        NotFound: no such file. InvalidInput: bad YAML or an invalid recipe.
    """
    from largeforge.yaml_files import read_yaml_file

    document, _ = read_yaml_file(path, NotFound(f"recipe {Path(path).expanduser()} does not exist"))
    if isinstance(document, dict):
        document = apply_overrides(document, overrides or [])
    return validate_recipe(document)


def recipe_json_schema() -> dict[str, Any]:
    """The JSON schema of a recipe (for the API, the UI and editors)."""
    schema = _ADAPTER.json_schema()
    schema["title"] = "LargeForge training recipe"
    return schema


__all__ = ["Recipe", "apply_overrides", "load_recipe", "recipe_json_schema", "validate_recipe"]
