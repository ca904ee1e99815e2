"""Project ownership of datasets and registered models.

Revision ID: 0005_platform_resources
Revises: 0004_platform_jobs
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from largeforge.db import UTCDateTime  # noqa: F401

revision = "0005_platform_resources"
down_revision = "0004_platform_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
