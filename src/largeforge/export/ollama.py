"""An Ollama Modelfile next to a GGUF file, so ``ollama create NAME -f OUT_DIR/Modelfile`` just works.

Owns translating our chat template into Ollama's Go-template ``TEMPLATE`` and writing the directory
(the GGUF, linked or copied, plus the Modelfile). Ollama does not read the Jinja template inside the
GGUF, so without a ``TEMPLATE`` it would prompt our models in a format they were never trained on.
Only ChatML-style templates are translated (ours and Qwen's): the template is recognised by what
it renders, not by its text. Anything else needs a Go template from the caller.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from largeforge.errors import InvalidInput, NotFound
from largeforge.export.model_files import staged_directory

MODELFILE = "Modelfile"
CHATML_STOP = "<|im_end|>"
# Equivalent to CHATML_TEMPLATE: every message is "<|im_start|>role\ncontent<|im_end|>\n"; after a
# final non-assistant message the assistant turn is opened (add_generation_prompt). Ollama puts the
# Modelfile's SYSTEM into .Messages as a system message, so .System is not used separately.
CHATML_GO_TEMPLATE = (
    "{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
    "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    '{{ if and $last (ne .Role "assistant") }}<|im_start|>assistant\n{{ end }}{{ end }}'
)
_PROBE = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U"},
    {"role": "assistant", "content": "A"},
    {"role": "user", "content": "V"},
]
_CHATML_PROBE = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in _PROBE)
_PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

ParameterValue = str | int | float | bool


@dataclass(frozen=True)
class ModelfileResult:
    out_dir: str
    modelfile: str
    gguf: str
    content: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_modelfile(
    gguf_path: str | Path,
    out_dir: str | Path,
    *,
    chat_template: str | None = None,
    template: str | None = None,
    system: str | None = None,
    parameters: Mapping[str, ParameterValue | Sequence[ParameterValue]] | None = None,
    overwrite: bool = False,
) -> ModelfileResult:
    """Write ``out_dir`` with the GGUF file and a Modelfile that runs it with the right prompt format.

    Args:
        chat_template: the model's Jinja chat template; default: the one stored in the GGUF.
        template: a Go template to use as-is instead of translating ``chat_template``.
        system: a default system prompt (``SYSTEM``).
        parameters: extra ``PARAMETER`` lines, e.g. ``{"temperature": 0.7, "stop": ["###"]}``.

    Raises:
        NotFound: no GGUF file. InvalidInput: a template we cannot translate, or bad system/parameters.
        Conflict: ``out_dir`` holds files and ``overwrite`` is False.
    """
    from largeforge.export.gguf_summary import read_gguf_summary

    source = Path(gguf_path).expanduser().resolve()
    if not source.is_file():
        raise NotFound(f"GGUF file {source} does not exist; make one with `largeforge export gguf`")
    if template is None:
        jinja = chat_template if chat_template is not None else read_gguf_summary(source).chat_template
        template = chatml_go_template(jinja)
    content = render_modelfile(source.name, template, system=system, parameters=parameters)
    target = Path(out_dir).expanduser().resolve()
    with staged_directory(target, overwrite=overwrite) as staging:
        _link_or_copy(source, staging / source.name)
        (staging / MODELFILE).write_text(content, encoding="utf-8")
    return ModelfileResult(str(target), str(target / MODELFILE), str(target / source.name), content)


def chatml_go_template(chat_template: str | None) -> str:
    """The Go template for ``chat_template`` if it renders ChatML.

    Raises:
        InvalidInput: no template, or one that renders something else.
    """
    if not chat_template:
        raise InvalidInput("the model has no chat template; pass a Go template with template= (--template)")
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from largeforge.export.gguf_vocab import portable_chat_template

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        compiled = env.from_string(portable_chat_template(chat_template))
        rendered = compiled.render(messages=_PROBE, add_generation_prompt=True)
        closed = compiled.render(messages=_PROBE, add_generation_prompt=False)
    except TemplateError as exc:
        raise InvalidInput(f"cannot render the chat template: {exc}") from exc
    if rendered != _CHATML_PROBE + "<|im_start|>assistant\n" or closed != _CHATML_PROBE:
        raise InvalidInput(
            "the chat template is not ChatML, which is the only one translated to Ollama's Go template; "
            f"it renders {rendered[:120]!r}. Pass a Go template with template= (--template)"
        )
    return CHATML_GO_TEMPLATE


def render_modelfile(
    gguf_name: str,
    template: str,
    *,
    system: str | None = None,
    parameters: Mapping[str, ParameterValue | Sequence[ParameterValue]] | None = None,
) -> str:
    """The Modelfile text: FROM, TEMPLATE, SYSTEM and PARAMETER lines (stop at ``<|im_end|>``)."""
    for name, text in (("template", template), ("system", system or "")):
        if '"""' in text:
            raise InvalidInput(f'the {name} contains """, which a Modelfile cannot quote; remove it')
    lines = [
        f"# Made by LargeForge. Create the model with: ollama create NAME -f {MODELFILE}",
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{template}"""',
    ]
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines.extend(_parameter_lines(parameters or {}))
    return "\n".join(lines) + "\n"


def _parameter_lines(parameters: Mapping[str, ParameterValue | Sequence[ParameterValue]]) -> list[str]:
    stops = [CHATML_STOP]
    lines: list[str] = []
    for name, value in parameters.items():
        if not _PARAMETER_NAME.match(name):
            raise InvalidInput(f"Ollama parameter name {name!r} must be lower_snake_case, e.g. temperature")
        values: list[ParameterValue] = [value] if isinstance(value, str | int | float) else list(value)
        if name == "stop":
            stops.extend(str(v) for v in values if str(v) not in stops)
            continue
        lines.extend(f"PARAMETER {name} {_format_value(v)}" for v in values)
    return [f"PARAMETER stop {json.dumps(stop)}" for stop in stops] + lines


def _format_value(value: ParameterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _link_or_copy(source: Path, destination: Path) -> None:
    """A hard link costs no space for a multi-GB GGUF; copy where links cannot cross filesystems."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


__all__ = [
    "CHATML_GO_TEMPLATE",
    "MODELFILE",
    "ModelfileResult",
    "chatml_go_template",
    "render_modelfile",
    "write_modelfile",
]
