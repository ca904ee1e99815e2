"""Where training meets the registry: registry references as a recipe's model, and finished runs
registered with their lineage (base version, dataset versions, the run itself).

Lives in the registry package because the registry sits above training in the layering: training never
imports the registry; the CLI (and the platform's workers) call these around ``run_training``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound
from largeforge.registry.orm import ModelVersion
from largeforge.registry.service import RegistryService
from largeforge.registry.storage import collect_files, file_sha256, manifest_digest


def find_by_content(registry: RegistryService, path: Path) -> ModelVersion | None:
    """The registered version whose files are exactly those of ``path`` (None if unregistered)."""
    try:
        files = collect_files(path)
    except (InvalidInput, NotFound):  # pickles or nothing to hash: it cannot be a registered version
        return None
    digest = manifest_digest({name: {"sha256": file_sha256(file)} for name, file in files.items()})
    return registry.repo.find_by_digest(digest)


def resolve_recipe_model(registry: RegistryService, model: str, cache_dir: Path) -> tuple[str, str | None]:
    """A local path for ``model`` and the registry reference it came from (if any).

    A path is used as is (and matched to a registered version by content); anything else is read as a
    registry reference and materialised under ``cache_dir/<digest>``.
    """
    path = Path(model).expanduser()
    if path.exists():
        found = find_by_content(registry, path)
        return str(path), found.ref if found else None
    version = registry.get(model)
    target = cache_dir / version.digest
    registry.store.materialize(version.manifest, target)
    return str(target), version.ref


def register_run(
    registry: RegistryService,
    run_dir: Path,
    name: str,
    parent: str | None,
    tags: dict[str, Any],
    *,
    reuse_identical: bool = False,
) -> ModelVersion:
    """File a finished run's ``final/`` as a new version, linked to its base and its data."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    result = json.loads((run_dir / "result.json").read_text())
    inputs = [("run", str(run_dir))]
    for source in manifest.get("datasets", {}).values():
        if isinstance(source, dict) and source.get("dataset_version"):
            inputs.append(("dataset", source["dataset_version"]))
        elif isinstance(source, dict) and source.get("file"):
            inputs.append(("file", source["file"]))
    final = run_dir / "final"
    relation = "base" if (final / "adapter_config.json").exists() else "fine-tuned-from"
    return registry.register(
        final,
        name=name,
        parents=[(parent, relation)] if parent else [],
        inputs=inputs,
        metrics={k: result[k] for k in ("final_loss", "train_loss", "steps") if result.get(k) is not None},
        tags={"method": result["method"], **tags},
        source={"run_dir": str(run_dir), "method": result["method"]},
        reuse_identical=reuse_identical,
    )


def register_export(
    registry: RegistryService,
    output: Path,
    *,
    source: Path,
    kind: str,
    relation: str,
    name: str | None,
    metrics: dict[str, Any] | None = None,
    reuse_identical: bool = False,
) -> ModelVersion | None:
    """Register an export (merged, quantized, gguf) with the version it was made from as parent.

    Without ``name`` the export is filed as ``<source model>-<kind>`` when the source is registered,
    and not at all when it is not (there is no lineage to keep, and no name to use).
    """
    parent = find_by_content(registry, source)
    if name is None:
        if parent is None:
            return None
        name = f"{parent.model.name}-{kind}"
    return registry.register(
        output,
        name=name,
        kind=kind,
        parents=[(parent.ref, relation)] if parent else [],
        metrics=metrics or {},
        source={"exported_from": str(source)},
        reuse_identical=reuse_identical,
    )


__all__ = ["find_by_content", "register_export", "register_run", "resolve_recipe_model"]
