"""The router's configuration: experts, their upstreams, the classifier, retries and the cache.

Owns the YAML schema (pydantic, ``extra="forbid"``) and its loading, which reports every problem at
once with its path as the user wrote it (``experts[1].upstreams[0].url``). It does not build anything
that runs: :mod:`largeforge.routing.service` turns a validated config into classifiers and pools.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from largeforge.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RESERVED_MODELS = ("auto",)
ClassifierType = Literal["keyword", "embedding", "hybrid", "learned"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Keyword(_Spec):
    term: str = Field(min_length=1, description="A word or phrase matched on word boundaries, case-folded.")
    weight: float = Field(1.0, gt=0, description="How much one match adds to the expert's keyword score.")


class Pattern(_Spec):
    regex: str = Field(min_length=1, description="A Python regular expression, searched case-insensitively.")
    weight: float = Field(1.0, gt=0, description="How much one match adds to the expert's keyword score.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from exc
        return value


class UpstreamConfig(_Spec):
    url: str = Field(description="Base URL of an OpenAI-compatible API, ending in /v1.")
    model: str = Field(
        min_length=1, description="Model id the upstream serves (a base model or an adapter name)."
    )
    weight: float = Field(1.0, gt=0, description="Relative share of traffic among the expert's replicas.")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding this upstream's API key."
    )
    max_concurrency: int | None = Field(
        None, gt=0, description="Most requests in flight to this replica; more wait for another replica."
    )
    timeout_seconds: float = Field(120.0, gt=0, description="Longest wait for this upstream's answer.")
    connect_timeout_seconds: float = Field(3.0, gt=0, description="Longest wait for a TCP connection.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")


class CostConfig(_Spec):
    input_per_1k: float = Field(0.0, ge=0, description="Price of 1000 prompt tokens.")
    output_per_1k: float = Field(0.0, ge=0, description="Price of 1000 completion tokens.")


class CacheConfig(_Spec):
    exact: bool = Field(
        True, description="Answer repeated deterministic requests (temperature 0) from the cache."
    )
    semantic_threshold: float | None = Field(
        None, gt=0, le=1, description="Cosine similarity above which a similar prompt is a hit; null = off."
    )
    ttl_seconds: float = Field(300.0, gt=0, description="How long an answer stays in the cache.")
    max_entries: int = Field(1024, gt=0, description="Entries kept per API key and expert (oldest dropped).")


class ExpertConfig(_Spec):
    name: str = Field(description="The expert's name; clients may send it as the `model`.")
    description: str = Field("", description="What the expert is for; the embedding classifier reads it too.")
    keywords: list[str | Keyword] = Field(
        default_factory=list, description="Terms that point to this expert."
    )
    patterns: list[str | Pattern] = Field(
        default_factory=list, description="Regexes that point to this expert."
    )
    examples: list[str] = Field(default_factory=list, description="Prompts this expert should receive.")
    upstreams: list[UpstreamConfig] = Field(min_length=1, description="Replicas that serve this expert.")
    cost: CostConfig = Field(
        default_factory=CostConfig, description="Price per 1000 tokens (reported, logged)."
    )
    fallbacks: list[str] = Field(
        default_factory=list, description="Experts tried in order when every replica of this one failed."
    )
    cache: CacheConfig | None = Field(None, description="Response cache for this expert; null = no cache.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or value in RESERVED_MODELS:
            raise ValueError(
                f"{value!r} is not a usable expert name (letters, digits, '.', '_', '-'; not 'auto')"
            )
        return value

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str | Pattern]) -> list[str | Pattern]:
        for index, item in enumerate(value):
            if isinstance(item, str):
                try:
                    re.compile(item)
                except re.error as exc:
                    raise ValueError(f"[{index}] {item!r} is not a valid regular expression ({exc})") from exc
        return value

    def keyword_terms(self) -> list[Keyword]:
        return [Keyword(term=k) if isinstance(k, str) else k for k in self.keywords]

    def regex_patterns(self) -> list[Pattern]:
        return [Pattern(regex=p) if isinstance(p, str) else p for p in self.patterns]


class ClassifierConfig(_Spec):
    type: ClassifierType = Field("hybrid", description="keyword, embedding, hybrid or learned.")
    threshold: float = Field(
        0.5, ge=0, le=1, description="Below this confidence the router abstains instead of guessing."
    )
    abstain_to: str | None = Field(
        None, description="Expert that gets abstentions (e.g. a stronger model); default: the default expert."
    )
    keyword_weight: float = Field(
        0.4, ge=0, le=1, description="Hybrid: share of the keyword probabilities in the combined score."
    )
    neighbours: int = Field(
        5, gt=0, description="Embedding: how many nearest examples vote (kNN) next to the centroid score."
    )
    artifact: str | None = Field(
        None,
        description="Learned: a classifier directory or a registry reference (router-classifier@production).",
    )

    @model_validator(mode="after")
    def _learned_needs_artifact(self) -> ClassifierConfig:
        if self.type == "learned" and not self.artifact:
            raise ValueError(
                "type learned needs `artifact:` (a directory or registry reference written by `largeforge router train`)"
            )
        return self


class RetryConfig(_Spec):
    attempts: int = Field(3, ge=1, description="Tries per expert (across its replicas) before its fallbacks.")
    backoff_seconds: float = Field(0.05, ge=0, description="First wait between tries; doubles each time.")
    deadline_seconds: float = Field(60.0, gt=0, description="Overall time for a request, retries included.")


class HealthConfig(_Spec):
    interval_seconds: float = Field(5.0, gt=0, description="Active health check period (GET <url>/models).")
    failures_to_eject: int = Field(3, ge=1, description="Consecutive failures that eject a replica.")
    cooldown_seconds: float = Field(10.0, ge=0, description="How long an ejected replica is left alone.")


class DecisionsConfig(_Spec):
    path: Path | None = Field(
        None, description="JSON-lines log of decisions; default <home>/router/decisions.jsonl."
    )
    log_prompts: bool = Field(
        True,
        description="Keep the prompt text (not only its hash) so feedback can train the learned classifier.",
    )


class RouterConfig(_Spec):
    default: str = Field(description="Expert that gets abstentions and requests nothing else claims.")
    classifier: ClassifierConfig = Field(
        default_factory=ClassifierConfig, description="How prompts are classified."
    )
    experts: list[ExpertConfig] = Field(min_length=1, description="The experts behind the router.")
    retry: RetryConfig = Field(default_factory=RetryConfig, description="Retries, backoff and the deadline.")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Health checks and ejection.")
    decisions: DecisionsConfig = Field(default_factory=DecisionsConfig, description="The decision log.")

    @model_validator(mode="after")
    def _references(self) -> RouterConfig:
        names = [e.name for e in self.experts]
        problems = [
            f"experts: the name {n!r} appears more than once"
            for n in sorted({n for n in names if names.count(n) > 1})
        ]
        if self.default not in names:
            problems.append(f"default: {self.default!r} is not an expert; choose one of {', '.join(names)}")
        if self.classifier.abstain_to is not None and self.classifier.abstain_to not in names:
            problems.append(f"classifier.abstain_to: {self.classifier.abstain_to!r} is not an expert")
        for index, expert in enumerate(self.experts):
            for position, fallback in enumerate(expert.fallbacks):
                if fallback not in names or fallback == expert.name:
                    problems.append(
                        f"experts[{index}].fallbacks[{position}]: {fallback!r} is not another expert"
                    )
        if self.classifier.type in ("embedding", "hybrid") and not any(
            e.examples or e.description for e in self.experts
        ):
            problems.append(
                "experts: the embedding classifier needs examples or a description on some experts"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def expert(self, name: str) -> ExpertConfig:
        for expert in self.experts:
            if expert.name == name:
                return expert
        raise KeyError(name)

    @property
    def abstain_expert(self) -> str:
        return self.classifier.abstain_to or self.default


def parse_router_config(document: Any, source: str = "router config") -> RouterConfig:
    """Validate a parsed YAML/JSON document.

    Raises:
        InvalidInput: listing every problem with its path (``experts[0].upstreams[0].url: ...``).
    """
    try:
        config = RouterConfig.model_validate(document)
    except ValidationError as exc:
        lines = [f"  - {_path(error['loc'])}: {_message(error)}" for error in exc.errors()]
        raise InvalidInput(f"{source} has {len(lines)} problem(s):\n" + "\n".join(lines)) from None
    _check_secrets(config, source)
    return config


def load_router_config(path: str | Path) -> RouterConfig:
    """Read and validate an experts YAML file.

    Raises:
        NotFound-like InvalidInput: the file is missing or is not YAML; InvalidInput: the config is invalid.
    """
    from largeforge.yaml_files import read_yaml_file

    missing = InvalidInput(
        f"router config {Path(path).expanduser()} does not exist; pass --config experts.yaml"
    )
    document, file = read_yaml_file(path, missing)
    return parse_router_config(document, str(file))


def _check_secrets(config: RouterConfig, source: str) -> None:
    """Missing API-key variables are config errors too: found at load, not at the first request."""
    from largeforge.settings import read_secret_env

    problems = []
    for index, expert in enumerate(config.experts):
        for position, upstream in enumerate(expert.upstreams):
            if upstream.api_key_env is None:
                continue
            try:
                read_secret_env(upstream.api_key_env)
            except InvalidInput as error:
                problems.append(f"  - experts[{index}].upstreams[{position}].api_key_env: {error.message}")
    if problems:
        raise InvalidInput(f"{source} has {len(problems)} problem(s):\n" + "\n".join(problems))


def _path(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("str", "Keyword", "Pattern") or "function-" in str(part):
            continue  # union-branch labels pydantic adds; not part of what the user wrote
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


__all__ = [
    "RESERVED_MODELS",
    "CacheConfig",
    "ClassifierConfig",
    "ClassifierType",
    "CostConfig",
    "DecisionsConfig",
    "ExpertConfig",
    "HealthConfig",
    "Keyword",
    "Pattern",
    "RetryConfig",
    "RouterConfig",
    "UpstreamConfig",
    "load_router_config",
    "parse_router_config",
]
