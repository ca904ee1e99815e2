"""The ``data synth`` use case: check the options, pick the teachers, generate, save, maybe import.

``synth.py`` owns generation; this module owns turning what a user typed into teachers and files,
so the CLI and (later) the platform's API share one path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from largeforge.errors import InvalidInput
from largeforge.progress import ProgressReporter

# SynthConfig field → the CLI flag a user typed, so errors name what the user wrote.
_FLAGS = {
    "kind": "--kind",
    "samples_per_prompt": "--samples",
    "temperature": "--temperature",
    "max_tokens": "--max-tokens",
    "system_prompt": "--system",
    "preference_strategy": "--strategy",
}


@dataclass(frozen=True)
class SynthRequest:
    seeds: Path
    out: Path
    config: Any  # synth.SynthConfig
    teacher: str | None
    base_url: str | None
    model_name: str | None
    api_key_env: str | None
    rejected_model: str | None
    import_as: str | None

    @classmethod
    def build(
        cls,
        *,
        seeds: Path,
        out: Path,
        teacher: str | None,
        base_url: str | None,
        model_name: str | None,
        api_key_env: str | None,
        kind: str,
        samples: int,
        temperature: float,
        max_tokens: int,
        system: str | None,
        strategy: str,
        rejected_model: str | None,
        import_as: str | None,
    ) -> SynthRequest:
        """Validate option combinations, naming the flags as the user typed them.

        Raises:
            InvalidInput: no teacher or two teachers, --base-url without --model, bad kind/strategy.
        """
        from largeforge.data.synth import SynthConfig
        from largeforge.data.versions import check_name

        if (teacher is None) == (base_url is None):
            raise InvalidInput("give exactly one teacher: --teacher MODEL_DIR or --base-url URL --model NAME")
        if base_url is not None and not model_name:
            raise InvalidInput("--base-url needs --model NAME (the model the endpoint should use)")
        if out.suffix != ".jsonl":
            raise InvalidInput(f"--out {out} must end in .jsonl")
        if import_as is not None:
            check_name(import_as)
        try:
            config = SynthConfig.model_validate(
                {
                    "kind": kind,
                    "samples_per_prompt": samples,
                    "temperature": temperature,
                    "max_tokens": max_tokens,
                    "system_prompt": system,
                    "preference_strategy": strategy,
                }
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{_FLAGS.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"invalid synth options: {problems}") from exc
        if config.kind == "preference" and strategy == "rejected_model" and not rejected_model:
            raise InvalidInput("--strategy rejected_model needs --rejected-model MODEL_DIR")
        return cls(seeds, out, config, teacher, base_url, model_name, api_key_env, rejected_model, import_as)


@dataclass(frozen=True)
class SynthOutcome:
    out: str
    rows: int
    skipped: int
    reasons: list[str]
    version_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_synthesis(request: SynthRequest, *, progress: ProgressReporter | None = None) -> SynthOutcome:
    """Generate rows with the requested teacher(s), write them to ``request.out``, optionally import."""
    from largeforge.data.importing import import_dataset
    from largeforge.data.synth import (
        EndpointTeacher,
        LocalTeacher,
        Teacher,
        read_seed_prompts,
        save_rows,
        synthesize,
    )
    from largeforge.data.versions import open_dataset_store

    prompts = read_seed_prompts(request.seeds)
    teacher: Teacher
    if request.teacher is not None:
        teacher = LocalTeacher(request.teacher)
    else:
        assert request.base_url is not None and request.model_name is not None  # checked in build()
        teacher = EndpointTeacher(request.base_url, request.model_name, api_key_env=request.api_key_env)
    rejected = LocalTeacher(request.rejected_model) if request.rejected_model else None
    result = synthesize(prompts, teacher, request.config, rejected_teacher=rejected, progress=progress)
    if not result.rows:
        raise InvalidInput(
            f"the teacher produced no usable rows ({result.skipped} skipped: "
            f"{'; '.join(result.reasons[:3])}); try another teacher, temperature or prompts"
        )
    save_rows(result.rows, request.out)
    version_id = None
    if request.import_as:
        version_id = import_dataset(
            request.out, name=request.import_as, store=open_dataset_store()
        ).version.id
    return SynthOutcome(str(request.out), len(result.rows), result.skipped, result.reasons, version_id)


__all__ = ["SynthOutcome", "SynthRequest", "run_synthesis"]
