"""Turn a recipe's ``data`` section into datasets for a trainer, with the dataset versions recorded.

Data comes from a stored dataset version (id, prefix, NAME or NAME@N) or straight from a file, which
is validated with the same code as ``largeforge data validate``. The kind must be one the method
accepts; that check is part of the pre-flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.training.specs import DataSpec


@dataclass
class LoadedRows:
    kind: str
    rows: list[dict[str, Any]]
    source: dict[str, Any]


@dataclass
class TrainingData:
    kind: str
    train: Any  # datasets.Dataset
    eval: Any | None
    sources: dict[str, Any] = field(default_factory=dict)


def load_rows(ref: str, spec: DataSpec) -> LoadedRows:
    """Rows of a dataset version or a file, normalised; files are validated first."""
    from largeforge.data.reading import read_dataset
    from largeforge.data.versions import open_dataset_store

    path = Path(ref).expanduser()
    if path.exists():
        dataset = read_dataset(path, format=spec.format, split=spec.split).require_valid()
        return LoadedRows(dataset.kind, dataset.rows, {"file": str(path.resolve()), "format": dataset.format})
    store = open_dataset_store()
    version = store.get(ref)
    return LoadedRows(
        version.kind, store.rows(version.id), {"dataset_version": version.id, "names": version.names}
    )


def load_training_data(spec: DataSpec, accepted_kinds: tuple[str, ...], *, seed: int) -> TrainingData:
    """Load train (and eval) data and check the kind against what the method accepts.

    Raises:
        InvalidInput: wrong kind for the method, or an eval set of another kind.
        DataValidationError / NotFound: bad file, unknown dataset.
    """
    from datasets import Dataset

    train = load_rows(spec.train, spec)
    if train.kind not in accepted_kinds:
        raise InvalidInput(
            f"data.train is {train.kind} data, but this method trains on {' or '.join(accepted_kinds)} data; "
            "pick a dataset of that kind or another method"
        )
    sources: dict[str, Any] = {"train": train.source}
    train_set = Dataset.from_list(train.rows)
    eval_set = None
    if spec.eval:
        evaluation = load_rows(spec.eval, spec)
        if evaluation.kind != train.kind:
            raise InvalidInput(
                f"data.eval is {evaluation.kind} data but data.train is {train.kind}; use the same kind"
            )
        eval_set = Dataset.from_list(evaluation.rows)
        sources["eval"] = evaluation.source
    elif spec.eval_fraction > 0:
        split = train_set.train_test_split(test_size=spec.eval_fraction, seed=seed)
        train_set, eval_set = split["train"], split["test"]
        sources["eval"] = {"held_out_fraction": spec.eval_fraction}
    return TrainingData(train.kind, train_set, eval_set, sources)


__all__ = ["LoadedRows", "TrainingData", "load_rows", "load_training_data"]
