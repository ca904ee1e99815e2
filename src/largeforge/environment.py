"""``largeforge env``: what a bug report needs — versions, device, paths."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from largeforge import __version__
from largeforge.settings import get_settings

KEY_PACKAGES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "pydantic",
    "typer",
    "rich",
    "httpx",
    "openai",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "bitsandbytes",
    "llama_cpp_python",
    "vllm",
)


def package_versions() -> dict[str, str | None]:
    """Installed version of each key dependency; None when it is not installed."""
    found: dict[str, str | None] = {}
    for name in KEY_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def device_info() -> dict[str, Any]:
    import psutil
    import torch

    info: dict[str, Any] = {
        "cpu_count": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cuda_available": torch.cuda.is_available(),
        "mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "torch_threads": torch.get_num_threads(),
    }
    if info["cuda_available"]:
        info["cuda_version"] = torch.version.cuda
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info["default_device"] = "cuda" if info["cuda_available"] else ("mps" if info["mps_available"] else "cpu")
    return info


def collect_environment() -> dict[str, Any]:
    settings = get_settings()
    return {
        "largeforge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device_info(),
        "paths": {
            "home": str(settings.home),
            "datasets": str(settings.datasets_dir),
            "models": str(settings.models_dir),
            "runs": str(settings.runs_dir),
            "artifacts": str(settings.artifacts_dir),
        },
        "database_url": settings.resolved_database_url(),
    }


__all__ = ["collect_environment", "device_info", "package_versions"]
