"""Every loader reads its container into the same raw rows, with line numbers where lines exist."""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict

from largeforge.data.loaders import LOADERS, load_file, to_plain
from largeforge.data.reading import read_dataset
from largeforge.errors import InvalidInput, NotFound

ROWS = [{"prompt": "2+2?", "answer": "4"}, {"prompt": "3+3?", "answer": "6"}]


def test_jsonl_with_blank_lines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode() + b"\n\n" + json.dumps(ROWS[1]).encode() + b"\n"
    )
    loaded = load_file(path)
    assert [r.data for r in loaded.rows] == ROWS
    assert [(r.number, r.line) for r in loaded.rows] == [(1, 1), (2, 3)]
    assert loaded.loader == "jsonl" and loaded.columns == ["answer", "prompt"]


def test_json_array_and_data_object(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(ROWS))
    (tmp_path / "b.json").write_text(json.dumps({"data": ROWS}))
    assert [r.data for r in load_file(tmp_path / "a.json").rows] == ROWS
    assert [r.data for r in load_file(tmp_path / "b.json").rows] == ROWS


def test_json_syntax_error_reports_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('[\n{"prompt": "a"},\n{"prompt": }\n]')
    loaded = load_file(tmp_path / "bad.json")
    assert loaded.rows == [] and loaded.errors[0].line == 3
    assert "not valid JSON" in loaded.errors[0].problem


def test_csv_with_json_cells_and_line_numbers(tmp_path: Path) -> None:
    messages = json.dumps([{"role": "user", "content": "Hi, you"}, {"role": "assistant", "content": "Hello"}])
    path = tmp_path / "d.csv"
    path.write_text('messages,note\n"' + messages.replace('"', '""') + '",\n', encoding="utf-8")
    loaded = load_file(path)
    assert loaded.rows[0].data == {"messages": json.loads(messages)}  # empty note cell is missing
    assert loaded.rows[0].line == 2 and loaded.columns == ["messages", "note"]
    dataset = read_dataset(path)
    assert dataset.format == "messages" and dataset.report.ok


def test_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    loaded = load_file(tmp_path / "d.parquet")
    assert [r.data for r in loaded.rows] == ROWS and loaded.loader == "parquet"


def test_hf_folder_and_dataset_dict_splits(tmp_path: Path) -> None:
    Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "single"))
    assert [r.data for r in load_file(tmp_path / "single").rows] == ROWS
    DatasetDict({"train": Dataset.from_list(ROWS), "test": Dataset.from_list(ROWS[:1])}).save_to_disk(
        str(tmp_path / "dict")
    )
    assert len(load_file(tmp_path / "dict").rows) == 2  # train by default
    assert len(load_file(tmp_path / "dict", split="test").rows) == 1
    with pytest.raises(InvalidInput, match="train, test"):
        load_file(tmp_path / "dict", split="validation")


def test_missing_path_unknown_extension_and_plain_folder(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_file(tmp_path / "nope.jsonl")
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(InvalidInput, match=r"\.jsonl"):
        load_file(tmp_path / "d.xlsx")
    (tmp_path / "folder").mkdir()
    with pytest.raises(InvalidInput, match="save_to_disk"):
        load_file(tmp_path / "folder")
    assert set(LOADERS) == {".jsonl", ".ndjson", ".json", ".csv", ".parquet"}


def test_csv_keeps_record_numbers_and_start_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(
        b'text,id\n"line one\nline two",1\nplain,2\n"caf\xe9",3\nx,4,extra\nlast,5\n'  # \xe9: latin-1
    )
    loaded = load_file(path)
    assert [(r.number, r.line, r.data["id"]) for r in loaded.rows] == [(1, 2, "1"), (2, 4, "2"), (5, 7, "5")]
    assert loaded.rows[0].data["text"] == "line one\nline two"
    assert [(e.row, e.line) for e in loaded.errors] == [(3, 5), (4, 6)]
    assert "not valid UTF-8 (byte 0xe9" in loaded.errors[0].problem and "iconv" in loaded.errors[0].hint
    assert loaded.errors[1].problem == "has 3 cells but the header names 2 columns"


def test_jsonl_bad_bytes_keep_later_record_numbers(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "caf\xe9"}\n{"text": "b"}\n')
    loaded = load_file(path)
    assert [(r.number, r.line) for r in loaded.rows] == [(1, 1), (3, 3)]
    assert [(e.row, e.line) for e in loaded.errors] == [(2, 2)]


def test_parquet_values_become_plain_json(tmp_path: Path) -> None:
    table = pa.table(
        {
            "text": ["a"],
            "when": [datetime.datetime(2024, 1, 2, 3, 4)],
            "price": pa.array([decimal.Decimal("1.50")], pa.decimal128(5, 2)),
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    data = load_file(tmp_path / "d.parquet").rows[0].data
    assert data == {"text": "a", "when": "2024-01-02T03:04:00", "price": 1.5}
    json.dumps(data)  # a datetime or Decimal left in place would raise here


def test_to_plain_converts_numpy_values() -> None:
    value = to_plain({"ids": np.array([1, 2]), "score": np.float32(0.5), "n": np.int64(3)})
    assert value == {"ids": [1, 2], "score": 0.5, "n": 3}
    assert type(value["n"]) is int and type(value["ids"][0]) is int


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.json", b"[]", "is empty"),
        ("header.csv", b"text,id\n", "is empty"),
        ("blank.jsonl", b"\n  \n", "is empty"),
        ("utf16.jsonl", '{"text": "a"}\n'.encode("utf-16"), "UTF-16"),
    ],
)
def test_files_without_rows_or_in_utf16_are_refused(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        load_file(tmp_path / name)
