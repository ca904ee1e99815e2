"""Receive an upload body into a temporary file: streamed in chunks, hashed on the way, size-capped.

Owns the HTTP side of an upload only (multipart/form-data or a raw body); reading, validating and
storing the file is the data library's job (``largeforge.data``), called by the service.

The cap is enforced while bytes arrive: a declared ``Content-Length`` over the limit is refused before
a byte is read, and a chunked body is refused the moment it crosses the limit, so a client can never
make the server buffer more than the limit. The temporary directory is removed when the
``receive_upload`` context exits, whatever happened, so a refused or failed upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
from starlette.requests import Request

from largeforge.data.loaders import LOADERS
from largeforge.errors import InvalidInput, TooLarge

# Form fields besides the file (name, format) and the multipart framing fit easily in this much.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FIELD_BYTES = 1024
FORM_FIELDS = frozenset({"name", "format"})
SUFFIX_BY_CONTENT_TYPE = {
    "application/jsonl": ".jsonl",
    "application/x-ndjson": ".jsonl",
    "application/ndjson": ".jsonl",
    "application/json": ".json",
    "text/csv": ".csv",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
}


@dataclass
class ReceivedUpload:
    """The uploaded file on local disk, with what the client said about it."""

    path: Path
    filename: str
    size_bytes: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)


class _Sink:
    """Writes the file's bytes, counting and hashing them; raises TooLarge past ``limit``."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self.handle, self.limit = handle, limit
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(too_large_message(self.limit))
        self.digest.update(data)
        self.handle.write(data)


def too_large_message(limit: int) -> str:
    return (
        f"the upload is larger than the limit of {limit:,} bytes; split the dataset into smaller files "
        "or ask an operator to raise LARGEFORGE_MAX_UPLOAD_BYTES"
    )


def safe_filename(raw: str | None) -> str:
    """The base name of what the client called the file, reduced to safe characters.

    Raises:
        InvalidInput: no name, or its extension is not one the data library reads.
    """
    base = Path((raw or "").replace("\\", "/")).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-128:]
    if not name:
        raise InvalidInput(
            "the upload has no file name; send it as a multipart `file` field with a filename, or pass "
            "?filename=data.jsonl (or a Content-Type such as application/jsonl or text/csv)"
        )
    if Path(name).suffix.lower() not in LOADERS:
        raise InvalidInput(
            f"cannot read a file called {name!r}: the name must end in one of {', '.join(LOADERS)}"
        )
    return name


class _FormReader:
    """python-multipart callbacks: the one file part goes to disk, small text fields to memory."""

    def __init__(self, open_file: Callable[[str], _Sink]) -> None:
        self.open_file = open_file
        self.fields: dict[str, str] = {}
        self.sink: _Sink | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._buffer = bytearray()
        self._in_file = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._add(data[start:end], value=False),
            "on_header_value": lambda data, start, end: self._add(data[start:end], value=True),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition, self._field, self._in_file = b"", None, False
        self._buffer = bytearray()

    def _add(self, data: bytes, *, value: bool) -> None:
        if value:
            self._header_value += data
        else:
            self._header_name += data

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if self.sink is not None:
                raise InvalidInput("send one file per upload; this form has several file parts")
            self.sink = self.open_file(options[b"filename"].decode("utf-8", "replace"))
            self._in_file = True
        elif name not in FORM_FIELDS:
            raise InvalidInput(
                f"unknown form field {name!r}; an upload has a `file` part and optional "
                f"{', '.join(sorted(FORM_FIELDS))} fields"
            )
        else:
            self._field = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            assert self.sink is not None  # set together with _in_file
            self.sink.write(data[start:end])
            return
        self._buffer += data[start:end]
        if len(self._buffer) > MAX_FIELD_BYTES:
            raise InvalidInput(f"form field {self._field!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._field is not None:
            self.fields[self._field] = self._buffer.decode("utf-8", "replace").strip()


@asynccontextmanager
async def receive_upload(
    request: Request, *, limit: int, scratch_dir: Path, filename: str | None = None
) -> AsyncIterator[ReceivedUpload]:
    """Stream the request body to a temporary file and yield it; the file is gone after the block.

    A ``multipart/form-data`` body must have one file part (its filename gives the extension) and may
    have ``name`` and ``format`` fields. Any other body is the file itself, named by ``filename`` or by
    its Content-Type.

    Raises:
        TooLarge: the body is (or declares itself) bigger than ``limit`` bytes.
        InvalidInput: a malformed form, no file, or a file type the data library cannot read.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_form = content_type == "multipart/form-data"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + (FORM_OVERHEAD_BYTES if is_form else 0):
        raise TooLarge(too_large_message(limit))
    scratch_dir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="upload-", dir=scratch_dir))
    handles: list[IO[bytes]] = []

    def open_file(raw_name: str) -> _Sink:
        handle = (directory / safe_filename(raw_name)).open("wb")
        handles.append(handle)
        return _Sink(handle, limit)

    try:
        if is_form:
            sink, fields = await _receive_form(request, open_file, limit)
        else:
            guessed = SUFFIX_BY_CONTENT_TYPE.get(content_type)
            sink, fields = open_file(filename or (f"upload{guessed}" if guessed else "")), {}
            async for chunk in request.stream():
                await anyio.to_thread.run_sync(sink.write, chunk)
        for handle in handles:
            handle.close()
        path = Path(handles[0].name)
        yield ReceivedUpload(path, path.name, sink.size, sink.digest.hexdigest(), fields)
    finally:
        for handle in handles:
            handle.close()
        shutil.rmtree(directory, ignore_errors=True)


async def _receive_form(
    request: Request, open_file: Callable[[str], _Sink], limit: int
) -> tuple[_Sink, dict[str, str]]:
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("the multipart/form-data Content-Type has no boundary; let the client set it")
    reader = _FormReader(open_file)
    parser = MultipartParser(boundary, reader.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + FORM_OVERHEAD_BYTES:
                raise TooLarge(too_large_message(limit))
            await anyio.to_thread.run_sync(parser.write, chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidInput(f"the multipart/form-data body is malformed: {exc}") from exc
    if reader.sink is None:
        raise InvalidInput("the form has no file part; send the dataset as a `file` field with a filename")
    return reader.sink, reader.fields


__all__ = ["ReceivedUpload", "receive_upload", "safe_filename", "too_large_message"]
