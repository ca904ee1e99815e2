"""Project roles, ordered: each role can do everything the roles below it can."""

from __future__ import annotations

from enum import Enum

from largeforge.errors import InvalidInput


class Role(str, Enum):
    viewer = "viewer"
    developer = "developer"
    admin = "admin"
    owner = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True when this role has at least ``needed``'s rights."""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(role.value for role in cls)
            raise InvalidInput(f"unknown role {value!r}; use one of: {names}") from None


_RANKS = {Role.viewer: 0, Role.developer: 1, Role.admin: 2, Role.owner: 3}


def weaker(a: Role, b: Role) -> Role:
    """The role with fewer rights (an API key never exceeds its user's role)."""
    return a if a.rank <= b.rank else b


__all__ = ["Role", "weaker"]
