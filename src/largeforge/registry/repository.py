"""All SQL of the registry. Never commits: the service owns the transaction."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from largeforge.registry.orm import (
    Alias,
    AliasEvent,
    ModelVersion,
    RegisteredModel,
    VersionInput,
    VersionParent,
    VersionPin,
)


class RegistryRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # models
    def get_model(self, name: str) -> RegisteredModel | None:
        return self._session.scalars(select(RegisteredModel).where(RegisteredModel.name == name)).first()

    def add_model(self, name: str, description: str | None) -> RegisteredModel:
        model = RegisteredModel(name=name, description=description)
        self._session.add(model)
        self._session.flush()
        return model

    def list_models(self) -> list[RegisteredModel]:
        return list(self._session.scalars(select(RegisteredModel).order_by(RegisteredModel.name)))

    # versions
    def next_version(self, model: RegisteredModel) -> int:
        current = self._session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
        )
        return (current or 0) + 1

    def add_version(self, version: ModelVersion) -> ModelVersion:
        self._session.add(version)
        self._session.flush()
        return version

    def get_version(self, model: RegisteredModel, number: int) -> ModelVersion | None:
        stmt = select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == number)
        return self._session.scalars(stmt).first()

    def latest_version(self, model: RegisteredModel) -> ModelVersion | None:
        stmt = (
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.version.desc())
        )
        return self._session.scalars(stmt.limit(1)).first()

    def get_version_by_id(self, version_id: str) -> ModelVersion | None:
        return self._session.get(ModelVersion, version_id)

    def find_by_digest(self, digest: str) -> ModelVersion | None:
        stmt = select(ModelVersion).where(ModelVersion.digest == digest).order_by(ModelVersion.created_at)
        return self._session.scalars(stmt.limit(1)).first()

    def list_versions(self, model: RegisteredModel) -> list[ModelVersion]:
        stmt = select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)
        return list(self._session.scalars(stmt))

    def delete_version(self, version: ModelVersion) -> None:
        for edge in self._session.scalars(select(VersionParent).where(VersionParent.child_id == version.id)):
            self._session.delete(edge)
        for item in self._session.scalars(select(VersionInput).where(VersionInput.version_id == version.id)):
            self._session.delete(item)
        self._session.delete(version)
        self._session.flush()

    # lineage
    def add_parent(self, child: ModelVersion, parent: ModelVersion, relation: str) -> None:
        self._session.add(VersionParent(child_id=child.id, parent_id=parent.id, relation=relation))

    def add_input(self, version: ModelVersion, kind: str, ref: str) -> None:
        self._session.add(VersionInput(version_id=version.id, kind=kind, ref=ref))

    def parents(self, version: ModelVersion) -> list[tuple[ModelVersion, str]]:
        stmt = (
            select(ModelVersion, VersionParent.relation)
            .join(VersionParent, VersionParent.parent_id == ModelVersion.id)
            .where(VersionParent.child_id == version.id)
        )
        return [(row[0], row[1]) for row in self._session.execute(stmt)]

    def children(self, version: ModelVersion) -> list[tuple[ModelVersion, str]]:
        stmt = (
            select(ModelVersion, VersionParent.relation)
            .join(VersionParent, VersionParent.child_id == ModelVersion.id)
            .where(VersionParent.parent_id == version.id)
        )
        return [(row[0], row[1]) for row in self._session.execute(stmt)]

    def inputs(self, version: ModelVersion) -> list[VersionInput]:
        stmt = select(VersionInput).where(VersionInput.version_id == version.id).order_by(VersionInput.id)
        return list(self._session.scalars(stmt))

    # aliases
    def get_alias(self, model: RegisteredModel, name: str) -> Alias | None:
        return self._session.get(Alias, (model.id, name))

    def aliases_of(self, model: RegisteredModel) -> list[Alias]:
        return list(
            self._session.scalars(select(Alias).where(Alias.model_id == model.id).order_by(Alias.name))
        )

    def aliases_pointing_to(self, version: ModelVersion) -> list[Alias]:
        return list(self._session.scalars(select(Alias).where(Alias.version_id == version.id)))

    def lock_alias(self, model: RegisteredModel, name: str) -> Alias | None:
        """The alias row, locked for update where the backend can (PostgreSQL), so moves serialise."""
        stmt = select(Alias).where(Alias.model_id == model.id, Alias.name == name).with_for_update()
        return self._session.scalars(stmt).first()

    def save_alias(self, alias: Alias) -> None:
        self._session.add(alias)
        self._session.flush()

    def delete_alias(self, alias: Alias) -> None:
        self._session.delete(alias)
        self._session.flush()

    def add_alias_event(self, event: AliasEvent) -> None:
        self._session.add(event)
        self._session.flush()

    def alias_events(self, model: RegisteredModel, alias: str | None) -> list[AliasEvent]:
        stmt = select(AliasEvent).where(AliasEvent.model_id == model.id)
        if alias is not None:
            stmt = stmt.where(AliasEvent.alias == alias)
        return list(self._session.scalars(stmt.order_by(AliasEvent.id)))

    # pins
    def get_pin(self, version: ModelVersion, holder: str) -> VersionPin | None:
        return self._session.get(VersionPin, (version.id, holder))

    def add_pin(self, version: ModelVersion, holder: str) -> VersionPin:
        pin = VersionPin(version_id=version.id, holder=holder)
        self._session.add(pin)
        self._session.flush()
        return pin

    def delete_pin(self, pin: VersionPin) -> None:
        self._session.delete(pin)
        self._session.flush()

    def pins_of(self, version: ModelVersion) -> list[VersionPin]:
        stmt = select(VersionPin).where(VersionPin.version_id == version.id).order_by(VersionPin.created_at)
        return list(self._session.scalars(stmt))


__all__ = ["RegistryRepository"]
