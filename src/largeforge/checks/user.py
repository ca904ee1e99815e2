"""User-written checks: ``module:function`` or ``path/to/file.py:function`` references.

Owns finding and loading the function and holding its results to the check contract (a bool or a
number in [0, 1]). Loading runs the user's module, so it happens when a check is built, never while a
recipe is only being parsed.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from largeforge.checks.builtin import CheckFn
from largeforge.checks.specs import PythonCheckConfig
from largeforge.errors import InvalidInput, NotFound


def _is_file_reference(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _load_file(where: str) -> ModuleType:
    path = Path(where).expanduser()
    if not path.is_file():
        raise NotFound(f"check file {path} does not exist (relative paths start at {Path.cwd()})")
    # Not registered in sys.modules: two checks from same-named files in different folders stay apart.
    spec = importlib.util.spec_from_file_location(f"largeforge_user_check_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path} cannot be loaded as a Python module; give a .py file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise InvalidInput(f"{path} has a syntax error at line {exc.lineno}: {exc.msg}") from exc
    return module


def _import_module(where: str) -> ModuleType:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and (where == exc.name or where.startswith(exc.name + ".")):
            raise NotFound(
                f"module {where!r} cannot be imported; install it, or reference a file as path/to/file.py:function"
            ) from exc
        raise InvalidInput(f"module {where!r} failed to import: {exc}") from exc


def load_function(reference: str) -> Callable[..., Any]:
    """The callable named by ``"module:function"`` or ``"path/to/file.py:function"``.

    Relative file paths start at the current directory, like data paths in a recipe.

    Raises:
        NotFound: the file, the module or the function does not exist.
        InvalidInput: the reference is malformed, the module fails to load, or the name is not callable.
    """
    where, _, name = reference.rpartition(":")
    if not where or not name:
        raise InvalidInput(f"{reference!r} must look like module:function or path/to/file.py:function")
    module = _load_file(where) if _is_file_reference(where) else _import_module(where)
    function = getattr(module, name, None)
    if function is None:
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise NotFound(f"{where} has no function {name!r}; it defines {public or 'no public callables'}")
    if not callable(function):
        raise InvalidInput(f"{reference} is a {type(function).__name__}, not a function")
    return function


def python_check(config: PythonCheckConfig) -> CheckFn:
    """A check around the user's function, holding each result to the [0, 1] contract."""
    function = load_function(config.function)

    def score(completion: str, row: Mapping[str, Any]) -> float:
        value = function(completion, row)
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 1:
            return float(value)
        raise InvalidInput(
            f"check function {config.function} returned {value!r}; a check returns a bool or a number "
            "between 0 and 1"
        )

    return score


__all__ = ["load_function", "python_check"]
