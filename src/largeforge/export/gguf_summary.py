"""Reading a GGUF file's header back: tensors, metadata, vocabulary size and chat template.

Owns inspection only (``gguf.GGUFReader`` maps the file; no tensor data is copied). Writing is
``export/gguf.py``'s. The tests read every export back through here, and so can a registry or a
serving engine that needs to know what a GGUF file holds without loading it into llama.cpp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class GGUFSummary:
    """What a GGUF file holds, read back with ``gguf.GGUFReader``."""

    path: str
    architecture: str
    tensor_count: int
    tensor_names: list[str]
    tensor_types: dict[str, str]
    token_count: int
    chat_template: str | None
    metadata: dict[str, Any]  # every scalar key (arrays are summarised by token_count)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_gguf_summary(path: str | Path) -> GGUFSummary:
    """Read a GGUF file's header: tensors, scalar metadata, token count and chat template.

    Raises:
        NotFound: no such file. InvalidInput: not a GGUF file.
    """
    from gguf import GGUFReader, GGUFValueType

    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise NotFound(f"GGUF file {file} does not exist")
    try:
        reader = GGUFReader(str(file))
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"{file} is not a readable GGUF file: {exc}") from exc
    metadata = {
        name: field.contents()
        for name, field in reader.fields.items()
        if field.types and field.types[0] != GGUFValueType.ARRAY and not name.startswith("GGUF.")
    }
    tokens = reader.get_field("tokenizer.ggml.tokens")
    return GGUFSummary(
        path=str(file),
        architecture=str(metadata.get("general.architecture")),
        tensor_count=len(reader.tensors),
        tensor_names=[t.name for t in reader.tensors],
        tensor_types={t.name: t.tensor_type.name for t in reader.tensors},
        token_count=len(tokens.data) if tokens is not None else 0,
        chat_template=metadata.pop("tokenizer.chat_template", None),
        metadata=metadata,
    )


__all__ = ["GGUFSummary", "read_gguf_summary"]
