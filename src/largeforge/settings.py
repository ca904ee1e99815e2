"""Process settings: the only place that reads ``LARGEFORGE_*`` environment variables.

Everything that needs a path or a knob calls :func:`get_settings` (cached). Tests change the
environment and call ``get_settings.cache_clear()``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where LargeForge keeps its data and how it behaves; every field is ``LARGEFORGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LARGEFORGE_", extra="ignore")

    home: Path = Field(
        default=Path(".largeforge"),
        description="Home directory for datasets, runs, models and artifacts (LARGEFORGE_HOME).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; default: a SQLite file under home.",
    )
    artifact_store_url: str | None = Field(
        default=None,
        description="fsspec URL of the artifact store (s3://bucket/prefix …); default: <home>/artifacts.",
    )
    max_validation_errors: int = Field(
        default=50, gt=0, description="How many bad rows a validation report lists before it stops."
    )
    max_upload_bytes: int = Field(
        default=1 << 30,
        gt=0,
        description="Largest dataset upload the control plane accepts, in bytes (default 1 GiB); "
        "a bigger upload is refused with 413 as soon as it crosses the limit.",
    )
    max_request_bytes: int = Field(
        default=16 << 20,
        gt=0,
        description="Largest request body the control plane reads on any route but dataset uploads, in bytes "
        "(default 16 MiB); a bigger one is refused with 413 before it fills memory.",
    )
    log_level: str = Field(default="INFO", description="Python logging level for LargeForge's loggers.")
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://host:6379/0) shared by API replicas for caches and rate limits; "
        "default: in-process.",
    )
    rate_limit_rpm: int = Field(
        default=600,
        ge=0,
        description="Default requests per minute per API key (or per browser user) when the key sets none; "
        "0 = unlimited.",
    )
    rate_limit_tpm: int = Field(
        default=1_000_000,
        ge=0,
        description="Default model tokens per minute per API key through the serving gateway when the key "
        "sets none; 0 = unlimited.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Log line format of `largeforge server` and `largeforge worker`: json (one object per "
        "line, for log collectors) or text (for people).",
    )
    job_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker's claim on a running job lasts without a heartbeat; a job whose "
        "worker died is claimed again (and resumes) once its lease has expired.",
    )
    job_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for a queued job."
    )
    job_backoff_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Wait before a failed job's next attempt; doubles with each attempt (capped at 1 hour).",
    )
    worker_concurrency: int = Field(
        default=1, gt=0, description="Jobs one worker (embedded or `largeforge worker`) runs at once."
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster address for `largeforge worker --executor ray` (auto on a cluster node, or "
        "ray://host:10001 with `pip install ray[client]`); "
        "default: start a local Ray instance.",
    )
    job_model_roots: str | None = Field(
        default=None,
        description="Directories (separated by ':') that jobs may load a model from by path — base models "
        "on the workers' disks; default: <home>/base-models. Any other path in a job is refused, so one "
        "project cannot read another's files; project models and hub ids (org/name) need no root.",
    )
    serve_api_key: str | None = Field(
        default=None,
        description="Bearer key `largeforge serve` requires when --api-key is not given; the deployment "
        "supervisor passes its internal key this way so that it stays out of the process list.",
    )
    deployment_start_timeout_seconds: float = Field(
        default=180.0,
        gt=0,
        description="How long a deployment replica may take to answer /health before it counts as failed "
        "to start (and is restarted with backoff).",
    )
    deployment_max_backoff_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait before restarting a crashed deployment replica; the wait starts at 1 s "
        "and doubles with each crash in a row.",
    )
    server_url: str | None = Field(
        default=None,
        description="Control plane the remote commands talk to (`largeforge jobs …`), e.g. "
        "http://127.0.0.1:8000; `--server URL` overrides it.",
    )
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="API key (lf_…) the remote commands send to the control plane; `--api-key-env NAME` "
        "reads another variable instead.",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        # Resolve once so that a later chdir (workers, tests) never moves the home.
        return value.expanduser().resolve()

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def base_models_dir(self) -> Path:
        return self.home / "base-models"

    def allowed_model_roots(self) -> list[Path]:
        """Where jobs may load models from by path (resolved, so symlinks cannot lead out)."""
        if self.job_model_roots:
            return [
                Path(part).expanduser().resolve() for part in self.job_model_roots.split(os.pathsep) if part
            ]
        return [self.base_models_dir.resolve()]

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'largeforge.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def read_secret_env(name: str) -> str:
    """Read a secret (an API key) from the environment variable the user named.

    Lives here because this module is the only one that touches ``os.environ``.

    Raises:
        InvalidInput: the variable is unset or empty.
    """
    from largeforge.errors import InvalidInput

    value = os.environ.get(name, "")
    if not value:
        raise InvalidInput(f"environment variable {name} is not set; export {name}=<your API key> and retry")
    return value


def child_environment(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment plus ``overrides``: what a child process (a serving replica) gets.

    Lives here because this module is the only one that touches ``os.environ``.
    """
    return {**os.environ, **overrides}


def process_rank() -> int:
    """This process's global rank under torchrun/accelerate (``RANK``), 0 when not distributed."""
    value = os.environ.get("RANK", "0")
    return int(value) if value.isdigit() else 0


__all__ = ["Settings", "child_environment", "get_settings", "process_rank", "read_secret_env"]
