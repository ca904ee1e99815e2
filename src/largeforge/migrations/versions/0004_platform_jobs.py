"""Jobs queue: jobs (leases, priorities, attempts) and their events.

Revision ID: 0004_platform_jobs
Revises: 0003_platform_identity
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from largeforge.db import UTCDateTime  # noqa: F401

revision = "0004_platform_jobs"
down_revision = "0003_platform_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
