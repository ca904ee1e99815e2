"""Training benchmark: what our training layer costs over plain TRL, and what packing buys.

Two figures, each a ratio of runs measured in this one process (absolute speeds on a shared machine
drift; ratios of interleaved runs drift much less):

1. **Overhead** (target ≥ 0.95). The same LoRA SFT job (r 8 on all linear layers; same model, data,
   seed, hyper-parameters, fp32, no activation checkpointing, one checkpoint at the very end) runs
   through ``largeforge.training.run_training`` (what ``largeforge train`` calls) and through a plain
   TRL ``SFTTrainer`` script. The figure is real tokens per second over the measured steps, i.e.
   after the warm-up steps and before the final checkpoint, so it holds the per-step cost of our
   callbacks, ``metrics.jsonl`` and token counting. Whole-job seconds (loading, pre-flight, saving)
   are printed too but are not the target: on a job of a few steps the fixed costs dominate.
2. **Packing** (target ≥ 1.5). Our SFT with ``packing: true`` against ``packing: false`` (the
   unpacked runs are the overhead comparison's own) on conversations of 1 to 8 extraction turns,
   P(k turns) ∝ 1/k, so most rows are short and a few are long, as in real chat data. The figure is
   real (non-padding) tokens per second: padding is work that trains nothing.

How it measures. Tokens are TRL's own ``num_tokens`` count (attention-mask sum, or the flattened
length when padding-free), read from our ``metrics.jsonl`` and from the plain trainer's log history.
Step ends are stamped from an ``on_step_end`` hook on both sides (our progress reporter; a callback
in the plain script), on two clocks: wall time, the figure the targets are judged on, and this
process's CPU time, which neighbours on a shared machine disturb less. Each side runs ``--repeats``
times, the order reversed on every other repeat; its repeats train the same batches in the same
order, so each step is timed at its fastest repeat. On a busy machine use ``--threads 1``: torch's
worker threads spin-wait on each other when another process holds a core.

    python bench/train_overhead.py [--preset mid|small|tiny] [--steps N] [--repeats R] [--threads T] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OVERHEAD_TARGET = 0.95
PACKING_TARGET = 1.5
LEARNING_RATE = 2e-4
LORA: dict[str, Any] = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}


@dataclass(frozen=True)
class BenchConfig:
    """The command line's choices; every run of one benchmark shares them."""

    preset: str
    steps: int
    warmup_steps: int
    repeats: int
    batch_size: int
    max_length: int
    rows: int
    seed: int
    packing_strategy: str = "bfd"

    @property
    def max_steps(self) -> int:
        return self.warmup_steps + self.steps


CLOCKS = ("wall", "cpu")


def read_clocks() -> tuple[float, float]:
    """Wall time, and this process's CPU time (which neighbours on a shared machine disturb less)."""
    return time.perf_counter(), time.process_time()


@dataclass
class RunMeasure:
    """One training run: when each step ended and how many real tokens had been trained by then."""

    label: str
    step_ends: list[tuple[float, float]] = field(default_factory=list)  # read_clocks() per step
    real_tokens: dict[int, int] = field(default_factory=dict)  # step -> cumulative non-padding tokens
    input_tokens: dict[int, int] = field(default_factory=dict)  # step -> cumulative tokens, padding included
    job_seconds: float = 0.0

    def steps(self, warmup_steps: int, clock: int) -> list[tuple[float, int]]:
        """(seconds on ``CLOCKS[clock]``, real tokens) of each step after the first ``warmup_steps``."""
        count = len(self.step_ends)
        if count <= warmup_steps or sorted(self.real_tokens) != list(range(1, count + 1)):
            raise RuntimeError(
                f"{self.label}: {count} step end(s) and token counts for steps {sorted(self.real_tokens)}; "
                f"need more than {warmup_steps} steps, each logged (logging_steps 1)"
            )
        return [
            (
                self.step_ends[k][clock] - self.step_ends[k - 1][clock],
                self.real_tokens[k + 1] - self.real_tokens[k],
            )
            for k in range(warmup_steps, count)
        ]

    def summary(self, warmup_steps: int) -> dict[str, Any]:
        summary: dict[str, Any] = {"label": self.label, "job_seconds": round(self.job_seconds, 2)}
        for clock, name in enumerate(CLOCKS):
            steps = self.steps(warmup_steps, clock)
            seconds, tokens = sum(s for s, _ in steps), sum(n for _, n in steps)
            summary[f"{name}_seconds"] = round(seconds, 3)
            summary[f"{name}_tokens_per_second"] = round(tokens / seconds, 1)
        summary["real_tokens"] = tokens
        last = len(self.step_ends)
        if {warmup_steps, last} <= set(self.input_tokens):
            padded = self.input_tokens[last] - self.input_tokens[warmup_steps]
            summary["padding_share"] = round(1 - tokens / padded, 3)
        return summary


# --- data -------------------------------------------------------------------------------------------


def make_varied_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """Conversation rows of 1 to 8 extraction turns; P(k turns) ∝ 1/k, so most rows are short.

    The long tail is what makes padding expensive: a batch pads every row to its longest one.
    """
    from largeforge.data.tasks import as_conversation, make_extraction_examples

    rng = random.Random(seed)
    turns = list(range(1, 9))
    weights = [1 / k for k in turns]
    examples = iter(make_extraction_examples(count * len(turns), seed=seed))
    rows = []
    for _ in range(count):
        messages = as_conversation(next(examples))["messages"]
        for _ in range(rng.choices(turns, weights)[0] - 1):
            messages += as_conversation(next(examples))["messages"][1:]  # user + assistant, no system
        rows.append({"messages": messages})
    return rows


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def length_stats(rows: list[dict[str, Any]], model_dir: Path, config: BenchConfig) -> dict[str, Any]:
    """Token lengths of the rows (truncated at max_length) and the padding share of batches of them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    lengths = []
    for row in rows:
        encoded: Any = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True)
        lengths.append(min(len(encoded["input_ids"]), config.max_length))
    batches = [lengths[i : i + config.batch_size] for i in range(0, len(lengths), config.batch_size)]
    padded = sum(max(batch) * len(batch) for batch in batches)
    return {
        "rows": len(lengths),
        "mean_tokens": round(statistics.mean(lengths), 1),
        "min_tokens": min(lengths),
        "max_tokens": max(lengths),
        "unpacked_padding_share": round(1 - sum(lengths) / padded, 3),
    }


# --- the two ways of running the same job -------------------------------------------------------------


class _StepClockTask:
    def __init__(self, measure: RunMeasure) -> None:
        self._measure = measure

    def advance(self, steps: int = 1, **fields: Any) -> None:
        # Our ProgressCallback advances the task in on_step_end, once per optimizer step.
        self._measure.step_ends.extend([read_clocks()] * steps)


class StepClockReporter:
    """A :class:`largeforge.progress.ProgressReporter` that only timestamps step ends."""

    def __init__(self, measure: RunMeasure) -> None:
        self._measure = measure

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[_StepClockTask]:
        yield _StepClockTask(self._measure)


def run_ours(
    model_dir: Path, data_file: Path, config: BenchConfig, out: Path, *, packing: bool
) -> RunMeasure:
    """The job through ``run_training``: recipe validation, pre-flight, our callbacks, run directory."""
    from transformers import set_seed

    from largeforge.training import run_training
    from largeforge.training.recipe import validate_recipe
    from largeforge.training.run_dir import RunDirectory

    measure = RunMeasure("largeforge" + (" packed" if packing else ""))
    recipe = validate_recipe(
        {
            "method": "sft",
            "model": str(model_dir),
            "data": {"train": str(data_file)},
            "training": {
                "max_steps": config.max_steps,
                "batch_size": config.batch_size,
                "learning_rate": LEARNING_RATE,
                "max_length": config.max_length,
                "logging_steps": 1,
                "device": "cpu",
            },
            # The only checkpoint is the end-of-training one, after the measured window.
            "checkpoints": {"save_steps": config.max_steps},
            "lora": LORA,
            "packing": packing,
            "packing_strategy": config.packing_strategy,
            "seed": config.seed,
        }
    )
    set_seed(config.seed)
    started = time.perf_counter()
    result = run_training(recipe, output_dir=out, progress=StepClockReporter(measure))
    measure.job_seconds = time.perf_counter() - started
    for line in RunDirectory(Path(result.run_dir)).metrics_file.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "num_tokens" in record:
            measure.real_tokens[int(record["step"])] = int(record["num_tokens"])
        if "tokens_seen" in record:  # our layer counts every input token, padding included
            measure.input_tokens[int(record["step"])] = int(record["tokens_seen"])
    return measure


def run_plain_trl(model_dir: Path, rows: list[dict[str, Any]], config: BenchConfig, out: Path) -> RunMeasure:
    """The same job as a plain TRL script would write it: load, SFTTrainer, train, save."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    measure = RunMeasure("plain TRL")

    class StepClock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            measure.step_ends.append(read_clocks())

    set_seed(config.seed)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="cosine",
        max_length=config.max_length,
        assistant_only_loss=True,
        # TRL's own defaults are bf16 autocast and activation checkpointing; the recipe trains in fp32
        # without checkpointing on a CPU, so the plain script says so to run the same job.
        bf16=False,
        activation_checkpointing=False,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.max_steps,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=LORA["r"],
            lora_alpha=LORA["alpha"],
            lora_dropout=LORA["dropout"],
            target_modules=LORA["target_modules"],
            task_type="CAUSAL_LM",
        ),
        callbacks=[StepClock()],
    )
    # Quiet, like ours: stdout carries this benchmark's table or JSON.
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.save_model(str(out / "final"))
    measure.job_seconds = time.perf_counter() - started
    for entry in trainer.state.log_history:
        if "num_tokens" in entry:
            measure.real_tokens[int(entry["step"])] = int(entry["num_tokens"])
    return measure


# --- the benchmark ------------------------------------------------------------------------------------


def best_window(measures: list[RunMeasure], warmup_steps: int, clock: int) -> tuple[float, int]:
    """Seconds and real tokens of the measured steps, each step timed at its fastest over the repeats.

    A side's repeats train the same batches in the same order (the seed fixes it), so step k does the
    same work every time; on a shared machine contention only ever adds time, so the fastest of the
    repeats is the closest to the step's own cost (the ``timeit`` argument).
    """
    per_run = [run.steps(warmup_steps, clock) for run in measures]
    tokens = [n for _, n in per_run[0]]
    if any([n for _, n in steps] != tokens for steps in per_run[1:]):
        raise RuntimeError(f"{measures[0].label}: repeats trained different batches; check the seeding")
    seconds = sum(min(steps[k][0] for steps in per_run) for k in range(len(tokens)))
    return seconds, sum(tokens)


def compare(
    runs: dict[str, list[RunMeasure]], numerator: str, denominator: str, warmup_steps: int, target: float
) -> dict[str, Any]:
    """Tokens/s of each side on both clocks, their ratios against ``target``, and every run's figures."""
    result: dict[str, Any] = {"target": target}
    for clock, name in enumerate(CLOCKS):
        windows = {side: best_window(measures, warmup_steps, clock) for side, measures in runs.items()}
        speed = {side: tokens / seconds for side, (seconds, tokens) in windows.items()}
        ratio = speed[numerator] / speed[denominator]
        result[name] = {
            "tokens_per_second": {side: round(value, 1) for side, value in speed.items()},
            "step_seconds": {
                side: round(seconds / len(runs[side][0].steps(warmup_steps, clock)), 3)
                for side, (seconds, _) in windows.items()
            },
            "ratio": round(ratio, 3),
            "met": ratio >= target,
        }
    result["job_seconds"] = {
        side: round(statistics.median(run.job_seconds for run in measures), 2)
        for side, measures in runs.items()
    }
    result["runs"] = [run.summary(warmup_steps) for measures in runs.values() for run in measures]
    return result


def run_benchmark(config: BenchConfig, work: Path) -> dict[str, Any]:
    from largeforge.scratch import build_base_model

    model_dir = work / "model"
    info = build_base_model(model_dir, preset=config.preset, seed=config.seed)
    rows = make_varied_rows(config.rows, config.seed)
    data_file = write_jsonl(rows, work / "train.jsonl")
    sides = {
        "largeforge": lambda out: run_ours(model_dir, data_file, config, out, packing=False),
        "plain TRL": lambda out: run_plain_trl(model_dir, rows, config, out),
        "largeforge packed": lambda out: run_ours(model_dir, data_file, config, out, packing=True),
    }
    runs: dict[str, list[RunMeasure]] = {name: [] for name in sides}
    for repeat in range(config.repeats):
        # Reverse the order on every other repeat so that drift on a shared machine (neighbours,
        # heat) falls on both sides of each comparison alike.
        for name in list(sides)[:: 1 if repeat % 2 == 0 else -1]:
            runs[name].append(sides[name](work / "runs" / f"{repeat}-{name.replace(' ', '-')}"))
    unpacked = runs["largeforge"]
    overhead = compare(
        {"largeforge": unpacked, "plain TRL": runs["plain TRL"]},
        "largeforge",
        "plain TRL",
        config.warmup_steps,
        OVERHEAD_TARGET,
    )
    for name in CLOCKS:
        step = overhead[name]["step_seconds"]
        overhead[name]["step_milliseconds_over_plain"] = round(
            1000 * (step["largeforge"] - step["plain TRL"]), 1
        )
    return {
        "machine": machine_info(),
        "config": asdict(config) | {"lora": LORA, "parameters": info.parameters},
        "data": length_stats(rows, model_dir, config),
        "overhead": overhead,
        "packing": compare(
            {"packed": runs["largeforge packed"], "unpacked": unpacked},
            "packed",
            "unpacked",
            config.warmup_steps,
            PACKING_TARGET,
        ),
    }


def machine_info() -> dict[str, Any]:
    import platform

    import torch
    import transformers
    import trl

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    machine, config, data = report["machine"], report["config"], report["data"]
    console.print(
        f"[bold]Training benchmark[/]: preset {config['preset']} ({config['parameters']:,} parameters), "
        f"LoRA r={config['lora']['r']} all-linear, batch {config['batch_size']}, max_length "
        f"{config['max_length']}, {config['warmup_steps']} warm-up + {config['steps']} measured steps, "
        f"best of {config['repeats']} repeat(s) per step\n"
        f"machine: {machine['cpu_count']} CPUs, torch threads {machine['torch_threads']}, torch "
        f"{machine['torch']}, transformers {machine['transformers']}, trl {machine['trl']}\n"
        f"data: {data['rows']} conversations of {data['min_tokens']}–{data['max_tokens']} tokens (mean "
        f"{data['mean_tokens']}); padding in unpacked batches ≈ {data['unpacked_padding_share']:.0%}"
    )
    table = Table("side", "real tok/s", "s/step", "job s", "ratio", "CPU ratio", "target")
    for key, sides in (("overhead", ("largeforge", "plain TRL")), ("packing", ("packed", "unpacked"))):
        result = report[key]
        wall, cpu = result["wall"], result["cpu"]
        for index, side in enumerate(sides):
            first = index == 0
            table.add_row(
                side,
                f"{wall['tokens_per_second'][side]:,.1f}",
                f"{wall['step_seconds'][side]:.2f}",
                f"{result['job_seconds'][side]:.1f}",
                _verdict(wall) if first else "",
                _verdict(cpu) if first else "",
                f"≥ {result['target']}" if first else "",
                end_section=not first,
            )
    console.print(table)
    extra = report["overhead"]
    console.print(
        f"our layer per step: {extra['wall']['step_milliseconds_over_plain']:+.0f} ms wall, "
        f"{extra['cpu']['step_milliseconds_over_plain']:+.0f} ms CPU. Targets are judged on wall time; "
        "the CPU-time ratio is less disturbed by neighbours on a shared machine. Job seconds (loading, "
        "pre-flight, saving) are fixed costs outside the ratios. packed and unpacked both run through "
        "largeforge. Per-run figures: --json."
    )


def _verdict(figures: dict[str, Any]) -> str:
    colour = "green" if figures["met"] else "red"
    return f"[{colour}]{figures['ratio']:.3f}[/]"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["tiny", "small", "mid"], default="mid")
    parser.add_argument("--steps", type=int, default=2, help="Measured steps per run (after warm-up).")
    parser.add_argument("--warmup-steps", type=int, default=1, help="Steps run before the clock starts.")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each side (order alternates).")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--max-length", type=int, default=512, help="Truncate conversations (the 7-8 turn ones) to this."
    )
    parser.add_argument("--rows", type=int, default=256, help="Conversations in the generated dataset.")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's; 1 on a busy machine)."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--packing-strategy",
        choices=["bfd", "bfd_split", "wrapped"],
        default="bfd",
        help="TRL packing strategy of the packed run (bfd keeps conversations whole; wrapped is faster on CPU).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON document instead of the table.")
    args = parser.parse_args(argv)
    for name in ("steps", "warmup_steps", "repeats", "batch_size", "max_length", "rows", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def quiet_libraries() -> None:
    """Progress bars and warnings from the libraries would bury the table."""
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.disable_progress_bars()
    # PEFT and TRL still call transformers' renamed gradient-checkpointing helpers; not ours to fix here.
    warnings.filterwarnings(
        "ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning
    )
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = BenchConfig(
        preset=args.preset,
        steps=args.steps,
        warmup_steps=args.warmup_steps,
        repeats=args.repeats,
        packing_strategy=args.packing_strategy,
        batch_size=args.batch_size,
        max_length=args.max_length,
        rows=args.rows,
        seed=args.seed,
    )
    import torch

    from largeforge.settings import get_settings

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="largeforge-bench-") as tmp:
        # This script is a process boundary, so it may set the environment: every run, dataset and
        # model the benchmark makes stays in the temporary home and disappears with it.
        os.environ["LARGEFORGE_HOME"] = str(Path(tmp) / "home")
        get_settings.cache_clear()
        report = run_benchmark(config, Path(tmp))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
