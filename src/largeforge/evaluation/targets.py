"""What an evaluation runs against: a registry version, a local model directory, or an endpoint.

Owns turning the user's words (``tiny:3``, ``tiny@production``, ``./run/final``, ``--base-url``) into
something that answers conversations. Answering is not done here: local models run through
``LocalTeacher`` and endpoints through ``EndpointTeacher`` (``largeforge.data.teachers``), the same code
that writes synthetic data, so there is one generation path in the code base.

Registry versions are materialised under ``<home>/models/registry/<digest>`` (as training does). An
adapter version needs its base: the base is the version's ``base`` parent in the lineage, materialised
the same way, and transformers' PEFT integration loads the pair. When the adapter's own
``adapter_config.json`` names another base path (it was trained elsewhere), a small view directory
links the adapter files next to a config that names the materialised base; stored blobs stay untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from largeforge.registry.materialize import materialize_version

if TYPE_CHECKING:
    from largeforge.data.teachers import Teacher
    from largeforge.registry.service import RegistryService

TargetKind = Literal["registry", "path", "endpoint"]


@dataclass(frozen=True)
class TargetSpec:
    """A target as the user named it.

    Attributes:
        reference: a registry reference (``NAME``, ``NAME:N``, ``NAME@alias``) or a model directory;
            with ``base_url``, the served model's name (unless ``model`` is given).
        base_url: an OpenAI-compatible endpoint (``http://host:8000/v1``) to evaluate instead.
        model: the endpoint's model name when ``reference`` is only a label.
        api_key_env: environment variable holding the endpoint's key.
    """

    reference: str
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class ResolvedTarget:
    """A target pinned down: the label results are stored under, and what to load or call."""

    label: str
    kind: TargetKind
    path: str | None = None
    version_ref: str | None = None
    version_id: str | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.label, "kind": self.kind, "version": self.version_ref}


@dataclass
class OpenedTarget:
    """A loaded target: ``teacher`` answers, ``count_tokens`` counts completion tokens (None: unknown)."""

    resolved: ResolvedTarget
    teacher: Teacher
    count_tokens: Callable[[str], int] | None


def resolve_target(spec: TargetSpec, registry: RegistryService, cache_dir: Path) -> ResolvedTarget:
    """Pin ``spec`` down; registry versions (and a registered adapter's base) are materialised.

    A local directory whose files equal a registered version is linked to that version, so its
    results land on the version as well.

    Raises:
        NotFound: unknown reference, version or path. InvalidInput: an adapter without a known base.
    """
    if spec.base_url is not None:
        model = spec.model or spec.reference
        return ResolvedTarget(
            f"{model} @ {spec.base_url}",
            "endpoint",
            base_url=spec.base_url,
            model=model,
            api_key_env=spec.api_key_env,
        )
    from largeforge.registry.runs import find_by_content

    path = Path(spec.reference).expanduser()
    if path.exists():
        found = find_by_content(registry, path)
        resolved_path = str(path.resolve())
        return ResolvedTarget(
            resolved_path,
            "path",
            path=resolved_path,
            version_ref=found.ref if found else None,
            version_id=found.id if found else None,
        )
    version = registry.get(spec.reference)
    local = materialize_version(registry, version, cache_dir)
    return ResolvedTarget(
        version.ref, "registry", path=str(local), version_ref=version.ref, version_id=version.id
    )


def open_target(resolved: ResolvedTarget, *, http_client: Any | None = None) -> OpenedTarget:
    """Load a local model (once) or create an endpoint client.

    Args:
        http_client: handed to the endpoint's ``openai`` client (tests pass an ``httpx2`` mock).

    Raises:
        NotFound / InvalidInput: the model cannot be loaded (no chat template, not a model directory).
    """
    from largeforge.data.teachers import EndpointTeacher, LocalTeacher

    if resolved.kind == "endpoint":
        assert resolved.base_url is not None and resolved.model is not None  # set by resolve_target
        teacher: Teacher = EndpointTeacher(
            resolved.base_url, resolved.model, api_key_env=resolved.api_key_env, http_client=http_client
        )
        return OpenedTarget(resolved, teacher, None)
    assert resolved.path is not None
    from largeforge.model_source import load_tokenizer

    tokenizer = load_tokenizer(resolved.path)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return OpenedTarget(resolved, LocalTeacher(resolved.path), count_tokens)


__all__ = [
    "OpenedTarget",
    "ResolvedTarget",
    "TargetKind",
    "TargetSpec",
    "open_target",
    "resolve_target",
]
