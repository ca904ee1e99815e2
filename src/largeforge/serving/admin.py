"""Run-time adapter management (vLLM's request shapes), behind the admin key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from largeforge.errors import NotFound
from largeforge.serving.auth import require_admin_key

admin_routes = APIRouter(prefix="/v1", dependencies=[Depends(require_admin_key)])


class LoadAdapter(BaseModel):
    lora_name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")
    lora_path: str = Field(min_length=1, description="A PEFT adapter directory on the server's disk.")


class UnloadAdapter(BaseModel):
    lora_name: str = Field(min_length=1)


@admin_routes.post("/load_lora_adapter")
async def load_lora_adapter(body: LoadAdapter, request: Request) -> dict[str, Any]:
    """Serve another adapter from now on; it joins the same batches as the others."""
    if not (Path(body.lora_path) / "adapter_config.json").is_file():
        raise NotFound(f"lora_path: {body.lora_path} is not an adapter directory (no adapter_config.json)")
    await request.app.state.engine.load_adapter(body.lora_name, body.lora_path)
    return {"status": "loaded", "lora_name": body.lora_name}


@admin_routes.post("/unload_lora_adapter")
async def unload_lora_adapter(body: UnloadAdapter, request: Request) -> dict[str, Any]:
    await request.app.state.engine.unload_adapter(body.lora_name)
    return {"status": "unloaded", "lora_name": body.lora_name}


__all__ = ["admin_routes"]
