"""The parity check itself: equal models pass, changed models fail, NaN never passes."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from largeforge.errors import InvalidInput
from largeforge.export.parity import DEFAULT_CANARY_PROMPTS, check_parity, render_canaries


@pytest.fixture(scope="module")
def sharp_qwen(sharp_model_dirs: dict[str, Path]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = sharp_model_dirs["qwen2"]
    return AutoModelForCausalLM.from_pretrained(source), AutoTokenizer.from_pretrained(source)


def test_identical_models_pass_with_zero_difference(sharp_qwen: tuple[Any, Any]) -> None:
    model, tokenizer = sharp_qwen
    report = check_parity(model, copy.deepcopy(model), tokenizer, max_new_tokens=4)
    assert report.passed and report.greedy_match and report.greedy_agreement == 1.0
    assert report.max_abs_logit_diff == 0.0
    assert report.prompts == len(DEFAULT_CANARY_PROMPTS)
    assert report.positions == sum(len(ids) for ids in render_canaries(tokenizer))
    assert report.to_dict()["tolerance"] == 1e-3


def test_a_changed_model_fails_and_the_report_has_the_numbers(sharp_qwen: tuple[Any, Any]) -> None:
    model, tokenizer = sharp_qwen
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.model.layers[0].self_attn.q_proj.weight.add_(0.05)
    report = check_parity(model, changed, tokenizer, max_new_tokens=4)
    assert not report.passed
    assert 1e-3 < report.max_abs_logit_diff < 50
    assert report.mean_abs_logit_diff < report.max_abs_logit_diff
    assert "FAILED" in report.summary() and f"{report.max_abs_logit_diff:.3g}" in report.summary()
    loose = check_parity(model, changed, tokenizer, max_new_tokens=4, tolerance=100, min_greedy_agreement=0)
    assert loose.passed


def test_nan_output_never_passes(sharp_qwen: tuple[Any, Any]) -> None:
    model, tokenizer = sharp_qwen
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.model.norm.weight[0] = float("nan")
    report = check_parity(model, broken, tokenizer, max_new_tokens=1, tolerance=1e9, min_greedy_agreement=0)
    assert math.isinf(report.max_abs_logit_diff) and not report.passed


def test_loaders_run_after_the_reference_and_prompts_are_overridable(sharp_qwen: tuple[Any, Any]) -> None:
    model, tokenizer = sharp_qwen
    calls: list[str] = []

    def load_reference() -> Any:
        calls.append("reference")
        return model

    def load_candidate() -> Any:
        calls.append("candidate")
        return model

    report = check_parity(
        load_reference, load_candidate, tokenizer, prompts=["hello world"], max_new_tokens=3
    )
    assert calls == ["reference", "candidate"]
    assert report.prompts == 1 and report.greedy_tokens == 3 and report.passed
    templated = render_canaries(tokenizer, ["hello world"])[0]
    raw = render_canaries(tokenizer, ["hello world"], use_chat_template=False)[0]
    assert templated[0] == tokenizer.convert_tokens_to_ids("<|im_start|>") and len(raw) < len(templated)


def test_bad_arguments_are_refused(sharp_qwen: tuple[Any, Any]) -> None:
    model, tokenizer = sharp_qwen
    with pytest.raises(InvalidInput, match="at least one canary"):
        check_parity(model, model, tokenizer, prompts=[])
    with pytest.raises(InvalidInput, match="tolerance >= 0"):
        check_parity(model, model, tokenizer, tolerance=-1)
    with pytest.raises(InvalidInput, match="a model or a loader"):
        check_parity(model, "not a model", tokenizer, max_new_tokens=1)
