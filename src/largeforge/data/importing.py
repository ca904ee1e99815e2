"""Import a file as a dataset version: read, validate, measure, store.

The single use case behind ``largeforge data import`` and (later) the platform's upload endpoint.
Nothing is stored unless every row is valid: a half-imported dataset is worse than none.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from largeforge.data.lengths import length_statistics, row_token_count
from largeforge.data.reading import read_dataset
from largeforge.data.versions import DatasetStore, ImportResult, check_name
from largeforge.progress import NullProgress, ProgressReporter


def import_dataset(
    path: str | Path,
    *,
    name: str,
    store: DatasetStore,
    format: str | None = None,
    split: str | None = None,
    tokenizer: str | None = None,
    max_tokens: int | None = None,
    progress: ProgressReporter | None = None,
) -> ImportResult:
    """Validate ``path`` and store its normalised rows as a content-addressed version.

    Args:
        tokenizer: a model directory (or hub id) whose tokenizer measures token lengths; the statistics
            are stored in the manifest under that reference.
        max_tokens: rows longer than this (needs ``tokenizer``) are errors.

    Raises:
        DataValidationError: at least one row is invalid (the report lists them).
        InvalidInput / NotFound: unreadable file, bad name, unknown format.
    """
    from largeforge.model_source import load_tokenizer

    check_name(name)
    reporter = progress or NullProgress()
    loaded_tokenizer = load_tokenizer(tokenizer) if tokenizer else None
    dataset = read_dataset(
        path, format=format, split=split, tokenizer=loaded_tokenizer, max_tokens=max_tokens
    ).require_valid()
    token_stats: dict[str, dict[str, float]] = {}
    if loaded_tokenizer is not None and tokenizer is not None:
        lengths = []
        with reporter.task("Measuring token lengths", total=len(dataset.rows)) as task:
            for row in dataset.rows:
                lengths.append(row_token_count(row, dataset.kind, loaded_tokenizer))
                task.advance()
        token_stats[str(tokenizer)] = length_statistics(lengths)
    source: dict[str, Any] = {
        "path": str(dataset.source),
        "loader": dataset.loader,
        "file_sha256": _file_sha256(dataset.source),
        "warnings": dataset.report.warnings,
    }
    return store.add(
        dataset.rows,
        name=name,
        kind=dataset.kind,
        format=dataset.format,
        source=source,
        token_stats=token_stats,
    )


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None  # an HF save_to_disk folder: the rows' hash is what identifies it
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["import_dataset"]
