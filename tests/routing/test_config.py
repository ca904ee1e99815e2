"""The router config: the issue's YAML loads, and every problem is reported with its path."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from largeforge.cli.main import app
from largeforge.errors import InvalidInput
from largeforge.routing.classifiers import CLASSIFIERS
from largeforge.routing.config import ClassifierType, load_router_config, parse_router_config
from tests.routing.conftest import ISSUE_YAML


def test_the_issue_yaml_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "experts.yaml"
    path.write_text(ISSUE_YAML)
    config = load_router_config(path)
    assert [e.name for e in config.experts] == ["math", "general"]
    assert config.default == "general" and config.classifier.type == "hybrid"
    assert [k.term for k in config.expert("math").keyword_terms()] == ["sum", "multiply", "equation"]
    assert config.expert("general").upstreams[0].url == "http://127.0.0.1:8002/v1"


def test_every_problem_is_listed_with_its_path() -> None:
    document = {
        "default": "general",
        "classifier": {"type": "neural", "threshold": 2},
        "experts": [
            {
                "name": "math",
                "upstreams": [{"url": "ftp://x", "model": "tiny", "weight": 0}],
                "keyword": ["sum"],
            },
            {"name": "general", "upstreams": [], "patterns": ["(unclosed"]},
        ],
    }
    with pytest.raises(InvalidInput) as caught:
        parse_router_config(document, "experts.yaml")
    message = caught.value.message
    for path in (
        "classifier.type",
        "classifier.threshold",
        "experts[0].upstreams[0].url",
        "experts[0].upstreams[0].weight",
        "experts[0].keyword",
        "experts[1].upstreams",
        "experts[1].patterns",
    ):
        assert f"  - {path}:" in message, path
    assert message.startswith("experts.yaml has 7 problem(s)")


def test_references_between_experts_are_checked() -> None:
    document = {
        "default": "nobody",
        "experts": [
            {
                "name": "a",
                "examples": ["x"],
                "fallbacks": ["ghost"],
                "upstreams": [{"url": "http://h/v1", "model": "m"}],
            }
        ],
    }
    with pytest.raises(
        InvalidInput, match=r"default: 'nobody' is not an expert.*experts\[0\]\.fallbacks\[0\]: 'ghost'"
    ):
        parse_router_config(document)


def test_a_missing_api_key_variable_is_a_config_error_with_its_path() -> None:
    document = {
        "default": "a",
        "classifier": {"type": "keyword"},
        "experts": [
            {
                "name": "a",
                "upstreams": [{"url": "http://h/v1", "model": "m", "api_key_env": "LF_TEST_UNSET_KEY"}],
            }
        ],
    }
    with pytest.raises(
        InvalidInput,
        match=r"experts\[0\]\.upstreams\[0\]\.api_key_env: environment variable LF_TEST_UNSET_KEY",
    ):
        parse_router_config(document)


def test_classifier_registry_matches_the_config_literal() -> None:
    assert set(CLASSIFIERS) == set(typing.get_args(ClassifierType))


def test_cli_reports_config_errors_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("default: general\nexperts:\n  - name: general\n    upstreams: [{url: nope}]\n")
    result = CliRunner().invoke(app, ["router", "--config", str(path)])
    assert result.exit_code == 1
    assert "experts[0].upstreams[0].url" in result.output and "experts[0].upstreams[0].model" in result.output
    assert "Traceback" not in result.output
