"""Stored results on SQLite and PostgreSQL: registry versions (adapters included), metrics filed on
the version, reuse, deletes, the migration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import inspect

from largeforge.evaluation import TargetSpec, evaluate, list_results, load_suite, measure_perplexity
from largeforge.evaluation.service import get_result
from largeforge.registry.service import open_registry
from tests.evaluation.conftest import BASE_URL, SFT_DATA, fake_chat_endpoint, nano_suite, write_suite


def test_registry_version_result_is_stored_filed_and_reused(
    database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path, nano_suite()))
    with open_registry() as registry:
        registry.register(tiny_model_dir, name="tiny")
        registry.set_alias("tiny", "production", "1")
    record = evaluate(TargetSpec("tiny@production"), suite)
    assert (record.target, record.version, record.target_kind, record.reused) == (
        "tiny:1",
        "tiny:1",
        "registry",
        False,
    )
    assert record.summary["pass_rate"] == 0.5 and len(record.cases) == 2
    with open_registry() as registry:
        metrics = registry.get("tiny:1").metrics
    assert metrics["eval/nano/pass_rate"] == 0.5
    assert (metrics["eval/nano/check/length"], metrics["eval/nano/check/regex"]) == (1.0, 0.0)

    reused = evaluate(TargetSpec("tiny:1"), suite, reuse=True)
    assert (reused.id, reused.reused, reused.cases) == (record.id, True, record.cases)
    changed = load_suite(write_suite(tmp_path, nano_suite(generation={"max_tokens": 3}), "changed.yaml"))
    assert evaluate(TargetSpec("tiny:1"), changed, reuse=True).id != record.id  # another digest: runs again
    assert [r.id for r in list_results(target="tiny@production", suite="nano")][-1] == record.id
    assert get_result(record.id).summary == record.summary


def test_a_deleted_version_keeps_its_results(database_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, nano_suite()))
    with open_registry() as registry:
        registry.register(tiny_model_dir, name="tiny")
    record = evaluate(TargetSpec(str(tiny_model_dir)), suite)  # a path with a registered version's files
    assert (record.target_kind, record.version) == ("path", "tiny:1")
    with open_registry() as registry:
        registry.delete("tiny:1")
    kept = get_result(record.id)
    assert (kept.version, kept.target, kept.summary) == (None, str(tiny_model_dir.resolve()), record.summary)


def test_endpoint_results_are_stored_without_a_version(database_url: str, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, nano_suite()))
    client = fake_chat_endpoint(lambda body: "IMPOSSIBLE-" + "7" * 40)
    record = evaluate(TargetSpec("served", base_url=BASE_URL), suite, http_client=client)
    assert (record.target, record.target_kind, record.version) == (f"served @ {BASE_URL}", "endpoint", None)
    assert record.summary["pass_rate"] == 1.0
    assert (
        evaluate(TargetSpec("served", base_url=BASE_URL), suite, reuse=True, http_client=client).id
        != record.id
    )


def test_an_adapter_version_loads_its_registered_base(
    database_url: str, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path
) -> None:
    # The adapter was trained elsewhere: the base path in its config does not exist here.
    moved = tmp_path / "adapter"
    shutil.copytree(tiny_adapter_dir, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": "/gone/base"})
    )
    with open_registry() as registry:
        registry.register(tiny_model_dir, name="tiny")
        registry.register(moved, name="tiny-sft", parents=[("tiny:1", "base")])
    data = tmp_path / "few.jsonl"
    data.write_text("".join(SFT_DATA.read_text().splitlines(keepends=True)[:8]))
    from_registry = measure_perplexity(TargetSpec("tiny-sft:1"), str(data))
    original = measure_perplexity(TargetSpec(str(tiny_adapter_dir)), str(data))  # loads its real base
    base = measure_perplexity(TargetSpec("tiny:1"), str(data))
    assert from_registry.perplexity == pytest.approx(original.perplexity, rel=1e-5)
    assert from_registry.perplexity != pytest.approx(base.perplexity, rel=1e-3)  # the adapter was applied
    with open_registry() as registry:
        base_digest = registry.get("tiny:1").digest
        assert registry.get("tiny-sft:1").metrics["eval/perplexity/few.jsonl"] == from_registry.perplexity
    cache = tmp_path / "lf-home" / "models" / "registry"
    (view,) = cache.glob("*-on-*")
    named = json.loads((view / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(named).resolve() == (cache / base_digest).resolve()


def test_the_migration_creates_and_drops_eval_results(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from largeforge.db import MIGRATIONS_DIR, get_engine

    engine = get_engine()
    assert "eval_results" in inspect(engine).get_table_names()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001_registry")
    assert "eval_results" not in inspect(engine).get_table_names()
    assert "model_versions" in inspect(engine).get_table_names()
