"""Read dataset files into raw rows: JSONL, JSON, CSV, Parquet and HF ``save_to_disk`` folders.

Loaders never stop at the first bad line: undecodable bytes and invalid JSON become row errors with
their line numbers, and the good lines are still read, so one validation pass shows every problem.
The loader is chosen from the explicit :data:`LOADERS` registry by file extension.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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


# (line number, text, encoding error): an undecodable line keeps a replacement-decoded text so that
# CSV records spanning it still parse, and the error says which byte to fix.
Line = tuple[int, str, RowError | None]


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput(f"{path} is UTF-16; re-save it as UTF-8, e.g. `iconv -f utf-16 -t utf-8 in > out`")
    return raw


def _decode_lines(raw: bytes) -> list[Line]:
    """Every physical line, UTF-8 with or without BOM; lines that are not UTF-8 carry their error."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines: list[Line] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append((number, chunk.decode("utf-8").rstrip("\r"), None))
        except UnicodeDecodeError as exc:
            bad = chunk[exc.start : exc.start + 1].hex()
            problem = f"is not valid UTF-8 (byte 0x{bad} at column {exc.start + 1})"
            text = chunk.decode("utf-8", errors="replace").rstrip("\r")
            lines.append((number, text, RowError(None, number, None, problem, REENCODE_HINT)))
    return lines


def _check_not_empty(path: Path, lines: list[Line]) -> None:
    if not any(text.strip() for _, text, _ in lines):
        raise InvalidInput(f"{path} is empty; add at least one row")


def load_jsonl(path: Path, split: str | None) -> LoadedFile:
    lines = _decode_lines(_read_bytes(path))
    _check_not_empty(path, lines)
    rows: list[RawRow] = []
    errors: list[RowError] = []
    number = 0
    for line_no, text, encoding_error in lines:
        if not text.strip():
            continue
        number += 1
        if encoding_error is not None:
            errors.append(replace(encoding_error, row=number))
            continue
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
    lines = _decode_lines(_read_bytes(path))
    _check_not_empty(path, lines)
    errors = [error for _, _, error in lines if error is not None]
    if errors:
        return LoadedFile(path, "json", [], errors)
    try:
        document = json.loads("\n".join(text for _, text, _ in lines))
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
    if not document:
        raise InvalidInput(f"{path} is empty (an empty list); add at least one row")
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
    """Rows keep their record numbers and start lines even when a record spans lines or is bad."""
    lines = _decode_lines(_read_bytes(path))
    _check_not_empty(path, lines)
    bad = {line_no: error for line_no, _, error in lines if error is not None}
    if 1 in bad:
        raise InvalidInput(f"{path}: the header (line 1) {bad[1].problem}; {REENCODE_HINT}")
    reader = csv.reader(text + "\n" for _, text, _ in lines)
    rows: list[RawRow] = []
    errors: list[RowError] = []
    number = 0
    try:
        header = next(reader)
        previous = reader.line_num
        for cells in reader:
            start, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            number += 1
            if spanned := [bad[n] for n in range(start, previous + 1) if n in bad]:
                errors.append(replace(spanned[0], row=number))
            elif len(cells) > len(header):
                what = f"has {len(cells)} cells but the header names {len(header)} columns"
                hint = "quote cells that contain commas, or name every column in the header"
                errors.append(RowError(number, start, None, what, hint))
            else:
                data = {name: _csv_cell(cell) for name, cell in zip(header, cells, strict=False)}
                rows.append(RawRow(number, start, {k: v for k, v in data.items() if v is not None}))
    except csv.Error as exc:
        raise InvalidInput(f"{path}: cannot parse CSV at line {reader.line_num}: {exc}") from exc
    if number == 0:
        raise InvalidInput(f"{path} is empty (a header and no rows); add at least one row")
    return LoadedFile(path, "csv", rows, errors, header)


def load_parquet(path: Path, split: str | None) -> LoadedFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{path} is not a readable Parquet file: {exc}") from exc
    if table.num_rows == 0:
        raise InvalidInput(f"{path} is empty; add at least one row")
    rows = [RawRow(i, None, to_plain(row)) for i, row in enumerate(table.to_pylist(), start=1)]
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
    rows = [RawRow(i, None, to_plain(row)) for i, row in enumerate(dataset.to_list(), start=1)]
    return LoadedFile(path, "hf_disk", rows, [], list(dataset.column_names))


def to_plain(value: Any) -> Any:
    """Turn numpy, pyarrow, date, decimal and bytes values into JSON-compatible Python, recursively.

    Rows are hashed, stored as JSON and sent over HTTP later, so nothing else may leave a loader.

    Raises:
        InvalidInput: a value with no sensible JSON form (the message names its type).
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if hasattr(value, "as_py"):  # pyarrow scalars
        return to_plain(value.as_py())
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return to_plain(value.tolist())
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    raise InvalidInput(
        f"a {type(value).__name__} value cannot be stored in a dataset row; convert it to text"
    )


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


__all__ = ["LOADERS", "LoadedFile", "load_file", "to_plain"]
