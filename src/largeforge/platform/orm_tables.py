"""Imports every control-plane table so one ``Base.metadata`` knows them all (migrations, tests)."""

from __future__ import annotations

from largeforge.platform.audit import orm as audit_orm
from largeforge.platform.auth import orm as auth_orm
from largeforge.platform.datasets import orm as datasets_orm
from largeforge.platform.deployments import orm as deployments_orm
from largeforge.platform.jobs import orm as jobs_orm
from largeforge.platform.models import orm as models_orm
from largeforge.platform.projects import orm as projects_orm
from largeforge.platform.usage import orm as usage_orm

__all__ = [
    "audit_orm",
    "auth_orm",
    "datasets_orm",
    "deployments_orm",
    "jobs_orm",
    "models_orm",
    "projects_orm",
    "usage_orm",
]
