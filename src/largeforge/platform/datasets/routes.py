"""HTTP routes of the datasets domain (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["datasets"])
