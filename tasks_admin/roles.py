"""Who may do what: three ordered roles, held as Django group membership.

viewer reads; operator also retries, revokes, terminates and replays; admin also purges,
discards, runs bulk actions, controls workers and manages alerts (DESIGN.md, "Security").
A signed-in user in no role group is a viewer; a superuser is an admin. API tokens carry
a role of their own, never higher than their user's, so the effective role of a request
is decided where the request is authenticated and handed to services as an ``Actor``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text`` (case-insensitive); ValueError naming the choices."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {text!r}; choose one of {choices}") from None


# The Django group that grants each role; created on demand by the create_user command.
GROUP_NAMES: dict[Role, str] = {role: f"console-{role.label}" for role in Role}
_ROLE_OF_GROUP = {name: role for role, name in GROUP_NAMES.items()}

# Every action a service performs, and the least role allowed to perform it. Services
# check this (never the view), so pages and the API enforce the same rule.
ACTION_ROLES: dict[str, Role] = {
    "task.retry": Role.OPERATOR,
    "task.revoke": Role.OPERATOR,
    "task.terminate": Role.OPERATOR,
    "deadletter.replay": Role.OPERATOR,
    "tasks.bulk": Role.ADMIN,
    "queue.purge": Role.ADMIN,
    "deadletter.discard": Role.ADMIN,
    "worker.control": Role.ADMIN,
    "task.send": Role.ADMIN,
    "alerts.manage": Role.ADMIN,
    # Running the advisor's checks now only reads the broker and history.
    "advisor.run": Role.VIEWER,
    # Anyone signed in manages their own API tokens (never above their own role).
    "token.create": Role.VIEWER,
    "token.revoke": Role.VIEWER,
}


def role_of(user: Any) -> Role | None:
    """The role a signed-in user holds; None for anonymous or inactive users."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return role_of_groups(user.groups.values_list("name", flat=True))


def role_of_groups(group_names: Iterable[str]) -> Role:
    """The role an active, signed-in non-superuser holds through these groups."""
    held = [_ROLE_OF_GROUP[name] for name in group_names if name in _ROLE_OF_GROUP]
    return max(held, default=Role.VIEWER)


def may(role: Role | None, action: str) -> bool:
    """Whether ``role`` may perform ``action``; an unknown action is refused to everyone."""
    needed = ACTION_ROLES.get(action)
    return role is not None and needed is not None and role >= needed


@dataclass(frozen=True)
class Actor:
    """Who asks for an action and through what: what services check and audit."""

    user: Any
    role: Role | None
    source: Literal["page", "api", "command", "system"]
    address: str = ""

    @property
    def username(self) -> str:
        return getattr(self.user, "username", "") or ""

    def may(self, action: str) -> bool:
        return may(self.role, action)
