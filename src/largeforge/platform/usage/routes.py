"""HTTP routes of the usage domain (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["usage"])
