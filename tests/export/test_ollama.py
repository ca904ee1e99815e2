"""Ollama Modelfile: FROM the GGUF beside it, the ChatML template in Go syntax, stop at <|im_end|>."""

from __future__ import annotations

from pathlib import Path

import pytest

from largeforge.errors import Conflict, InvalidInput, NotFound
from largeforge.export import write_gguf, write_modelfile
from largeforge.export.ollama import CHATML_GO_TEMPLATE, chatml_go_template
from largeforge.scratch.chat_template import CHATML_TEMPLATE


@pytest.fixture(scope="module")
def gguf_file(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(write_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf", type="q8_0").path)


def test_modelfile_content_and_directory(gguf_file: Path, tmp_path: Path) -> None:
    result = write_modelfile(
        gguf_file,
        tmp_path / "ollama",
        system="You extract JSON.",
        parameters={"temperature": 0.2, "stop": ["###"]},
    )
    out = Path(result.out_dir)
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "tiny.gguf"]
    assert (out / "tiny.gguf").read_bytes() == gguf_file.read_bytes()
    text = (out / "Modelfile").read_text()
    assert text == result.content
    lines = text.splitlines()
    assert "FROM ./tiny.gguf" in lines
    assert f'TEMPLATE """{CHATML_GO_TEMPLATE}"""' in text
    assert 'SYSTEM """You extract JSON."""' in lines
    assert lines[-3:] == ['PARAMETER stop "<|im_end|>"', 'PARAMETER stop "###"', "PARAMETER temperature 0.2"]


def test_the_go_template_spells_out_chatml() -> None:
    # The Go template, read as text: each message wrapped in <|im_start|>role\n…<|im_end|>\n, and an
    # open assistant turn after the last non-assistant message: what CHATML_TEMPLATE renders.
    assert "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n" in CHATML_GO_TEMPLATE
    assert '{{ if and $last (ne .Role "assistant") }}<|im_start|>assistant\n{{ end }}' in CHATML_GO_TEMPLATE
    assert CHATML_GO_TEMPLATE.count("{{ end }}") == CHATML_GO_TEMPLATE.count(
        "{{ if"
    ) + CHATML_GO_TEMPLATE.count("{{ range")
    assert chatml_go_template(CHATML_TEMPLATE) == CHATML_GO_TEMPLATE


def test_templates_that_are_not_chatml_need_a_go_template(gguf_file: Path, tmp_path: Path) -> None:
    llama2 = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
    with pytest.raises(InvalidInput, match=r"not ChatML.*template="):
        write_modelfile(gguf_file, tmp_path / "a", chat_template=llama2)
    with pytest.raises(InvalidInput, match="cannot render"):
        chatml_go_template("{% for %}")
    custom = write_modelfile(
        gguf_file, tmp_path / "b", chat_template=llama2, template="[INST] {{ .Prompt }} [/INST]"
    )
    assert 'TEMPLATE """[INST] {{ .Prompt }} [/INST]"""' in custom.content
    assert not (tmp_path / "a").exists()


def test_bad_inputs_are_refused(gguf_file: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="export gguf"):
        write_modelfile(tmp_path / "missing.gguf", tmp_path / "out")
    with pytest.raises(InvalidInput, match='contains """'):
        write_modelfile(gguf_file, tmp_path / "out", system='say """hi"""')
    with pytest.raises(InvalidInput, match="lower_snake_case"):
        write_modelfile(gguf_file, tmp_path / "out", parameters={"Top-K": 1})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    with pytest.raises(Conflict):
        write_modelfile(gguf_file, tmp_path / "out")
    assert (tmp_path / "out" / "x").read_text() == "keep"
