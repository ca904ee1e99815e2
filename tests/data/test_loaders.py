"""Every loader reads its container into the same raw rows, with line numbers where lines exist."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict

from largeforge.data.loaders import LOADERS, load_file
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
