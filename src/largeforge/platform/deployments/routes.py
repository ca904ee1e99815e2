"""HTTP routes of the deployments domain (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["deployments"])
