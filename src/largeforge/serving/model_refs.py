"""What ``largeforge serve`` was pointed at, made loadable: paths as they are, registry references
materialised, and a registered adapter served on its registered base under the adapter's name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from largeforge.registry.orm import ModelVersion
    from largeforge.registry.service import RegistryService


@dataclass
class ServeTarget:
    model: str  # a directory or GGUF file
    adapters: dict[str, str] = field(default_factory=dict)
    served_name: str | None = None  # the id clients use for the base (default: the directory name)


def resolve_serve_target(model: str, adapters: dict[str, str]) -> ServeTarget:
    """Resolve MODEL and every ``--adapter NAME=PATH|REF``.

    Raises:
        NotFound: an unknown path or registry reference.
        InvalidInput: an adapter whose base cannot be found.
    """
    from largeforge.errors import NotFound

    local = {name: _local(ref) for name, ref in adapters.items()}
    if Path(model).expanduser().exists():
        return ServeTarget(str(Path(model).expanduser()), local)
    from largeforge.registry.service import open_registry

    try:
        with open_registry() as registry:
            version = registry.get(model)
            path = _materialize(registry, version)
            name, kind = version.model.name, version.kind
    except NotFound as error:
        raise NotFound(
            f"{model} is neither a file/directory here nor a registry reference: {error}"
        ) from None
    if kind != "adapter":
        return ServeTarget(str(path), local, served_name=name)
    base = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
    return ServeTarget(str(base), {name: str(path), **local})


def _local(reference: str) -> str:
    if Path(reference).expanduser().exists():
        return str(Path(reference).expanduser())
    from largeforge.registry.service import open_registry

    with open_registry() as registry:
        return str(_materialize(registry, registry.get(reference)))


def _materialize(registry: RegistryService, version: ModelVersion) -> Path:
    from largeforge.registry.materialize import materialize_version
    from largeforge.settings import get_settings

    return materialize_version(registry, version, get_settings().models_dir / "registry")


__all__ = ["ServeTarget", "resolve_serve_target"]
