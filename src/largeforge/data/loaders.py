"""Read dataset files into raw rows: JSONL, JSON, CSV, Parquet and HF ``save_to_disk`` folders.

Loaders never stop at the first bad line: undecodable bytes and invalid JSON become row errors with
their line numbers, and the good lines are still read, so one validation pass shows every problem.
The loader is chosen from the explicit :data:`LOADERS` registry by file extension.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from largeforge.data.records import RawRow
from largeforge.data.validation import RowError
from largeforge.errors import InvalidInput, NotFound

REENCODE_HINT = "re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.jsonl > out.jsonl`"


@dataclass
class LoadedFile:
    path: Path
    loader: str
    rows: list[RawRow]
    errors: list[RowError] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def _decode_lines(raw: bytes) -> tuple[list[tuple[int, str]], list[RowError]]:
    """Split into (line number, text) pairs, UTF-8 with or without BOM; bad lines become errors."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines, errors = [], []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append((number, chunk.decode("utf-8").rstrip("\r")))
        except UnicodeDecodeError as exc:
            bad = chunk[exc.start : exc.start + 1].hex()
            errors.append(
                RowError(
                    None,
                    number,
                    None,
                    f"is not valid UTF-8 (byte 0x{bad} at column {exc.start + 1})",
                    REENCODE_HINT,
                )
            )
    return lines, errors


def _check_not_empty(path: Path, lines: list[tuple[int, str]], errors: list[RowError]) -> None:
    if not errors and not any(text.strip() for _, text in lines):
        raise InvalidInput(f"{path} is empty; add at least one row")


def load_jsonl(path: Path, split: str | None) -> LoadedFile:
    lines, errors = _decode_lines(path.read_bytes())
    _check_not_empty(path, lines, errors)
    rows: list[RawRow] = []
    number = 0
    for line_no, text in lines:
        if not text.strip():
            continue
        number += 1
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(
                RowError(
                    number,
                    line_no,
                    None,
                    f"is not valid JSON ({exc.msg} at column {exc.colno})",
                    "fix the JSON syntax on this line",
                )
            )
            continue
        if not isinstance(value, dict):
            errors.append(
                RowError(
                    number,
                    line_no,
                    None,
                    f"is a JSON {type(value).__name__}, not an object",
                    "put each row in {...} with named columns",
                )
            )
            continue
        rows.append(RawRow(number, line_no, value))
    return LoadedFile(path, "jsonl", rows, errors)


def load_json(path: Path, split: str | None) -> LoadedFile:
    lines, errors = _decode_lines(path.read_bytes())
    _check_not_empty(path, lines, errors)
    if errors:
        return LoadedFile(path, "json", [], errors)
    try:
        document = json.loads("\n".join(text for _, text in lines))
    except json.JSONDecodeError as exc:
        error = RowError(
            None,
            exc.lineno,
            None,
            f"is not valid JSON ({exc.msg} at column {exc.colno})",
            "fix the JSON syntax; a .json file holds one array of row objects",
        )
        return LoadedFile(path, "json", [], [error])
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        raise InvalidInput(
            f'{path} must hold a JSON array of row objects (or {{"data": [...]}}), not a {type(document).__name__}'
        )
    rows = []
    for number, value in enumerate(document, start=1):
        if isinstance(value, dict):
            rows.append(RawRow(number, None, value))
        else:
            errors.append(
                RowError(
                    number,
                    None,
                    None,
                    f"is a JSON {type(value).__name__}, not an object",
                    "make every array item an object with named columns",
                )
            )
    return LoadedFile(path, "json", rows, errors)


def _csv_cell(value: str | None) -> Any:
    """Empty cells are missing; cells holding JSON lists/objects (e.g. messages) are parsed."""
    if value is None or value == "":
        return None
    stripped = value.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return value
    return value


def load_csv(path: Path, split: str | None) -> LoadedFile:
    lines, errors = _decode_lines(path.read_bytes())
    _check_not_empty(path, lines, errors)
    bad = {e.line for e in errors}
    good_lines = [(n, t) for n, t in lines if n not in bad]
    reader = csv.DictReader(io.StringIO("\n".join(t for _, t in good_lines)))
    rows = []
    for number, record in enumerate(reader, start=1):
        physical = good_lines[reader.line_num - 1][0] if reader.line_num - 1 < len(good_lines) else None
        data = {key: _csv_cell(value) for key, value in record.items() if key is not None}
        rows.append(RawRow(number, physical, {k: v for k, v in data.items() if v is not None}))
    return LoadedFile(path, "csv", rows, errors, list(reader.fieldnames or []))


def load_parquet(path: Path, split: str | None) -> LoadedFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{path} is not a readable Parquet file: {exc}") from exc
    if table.num_rows == 0:
        raise InvalidInput(f"{path} is empty; add at least one row")
    rows = [RawRow(i, None, row) for i, row in enumerate(table.to_pylist(), start=1)]
    return LoadedFile(path, "parquet", rows, [], table.column_names)


def load_hf_folder(path: Path, split: str | None) -> LoadedFile:
    from datasets import DatasetDict, load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a Hugging Face save_to_disk folder: {exc}") from exc
    if isinstance(dataset, DatasetDict):
        splits = list(dataset)
        chosen = split or ("train" if "train" in splits else None)
        if chosen not in splits:
            raise InvalidInput(f"{path} holds splits {', '.join(splits)}; choose one with --split")
        dataset = dataset[chosen]
    elif split is not None:
        raise InvalidInput(f"{path} holds a single dataset without splits; drop --split")
    if len(dataset) == 0:
        raise InvalidInput(f"{path} is empty; add at least one row")
    rows = [RawRow(i, None, row) for i, row in enumerate(dataset.to_list(), start=1)]
    return LoadedFile(path, "hf_disk", rows, [], list(dataset.column_names))


LOADERS: dict[str, Callable[[Path, str | None], LoadedFile]] = {
    ".jsonl": load_jsonl,
    ".ndjson": load_jsonl,
    ".json": load_json,
    ".csv": load_csv,
    ".parquet": load_parquet,
}
_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def load_file(path: str | Path, *, split: str | None = None) -> LoadedFile:
    """Read ``path`` with the loader its extension (or folder layout) calls for.

    Raises:
        NotFound: nothing at ``path``. InvalidInput: unsupported type, empty file, unreadable container.
    """
    source = Path(path).expanduser()
    if not source.exists():
        raise NotFound(f"{source} does not exist; check the path")
    if source.is_dir():
        if not any((source / marker).exists() for marker in _HF_MARKERS):
            raise InvalidInput(
                f"{source} is a folder but not a Hugging Face save_to_disk folder; give a file"
            )
        loaded = load_hf_folder(source, split)
    else:
        loader = LOADERS.get(source.suffix.lower())
        if loader is None:
            raise InvalidInput(
                f"cannot read {source.name}: supported files are {', '.join(LOADERS)} and HF save_to_disk folders"
            )
        loaded = loader(source, split)
    if not loaded.columns:
        loaded.columns = sorted({key for row in loaded.rows for key in row.data})
    return loaded


__all__ = ["LOADERS", "LoadedFile", "load_file"]
