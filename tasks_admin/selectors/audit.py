"""The audit page's reads: entries newest first, filtered, in keyset pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tasks_admin.models import AuditEntry

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    username: str = ""
    action: str = ""
    outcome: str = ""
    source: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class AuditCursor:
    """The last entry of a page: (created_at, id), the order's two keys."""

    created_at: dt.datetime
    entry_id: int

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}~{self.entry_id}"

    @classmethod
    def decode(cls, text: str) -> AuditCursor:
        """Parse ``encode``'s output; ValueError for anything else."""
        moment, sep, entry_id = text.partition("~")
        if not sep:
            raise ValueError("a cursor is <time>~<id>")
        at = dt.datetime.fromisoformat(moment)
        return cls(at if at.tzinfo else at.replace(tzinfo=dt.UTC), int(entry_id))


@dataclass
class AuditPage:
    rows: list[AuditEntry]
    next_cursor: AuditCursor | None


def audit_page(filters: AuditFilters, *, after: AuditCursor | None = None) -> AuditPage:
    """PAGE_SIZE entries after ``after`` in (created_at DESC, id DESC) order; walks
    audit_created_idx, or audit_action_idx / audit_user_idx when those filters are set."""
    entries = AuditEntry.objects.all()
    if filters.username:
        entries = entries.filter(username=filters.username)
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.outcome:
        entries = entries.filter(outcome=filters.outcome)
    if filters.source:
        entries = entries.filter(source=filters.source)
    if filters.since is not None:
        entries = entries.filter(created_at__gte=filters.since)
    if filters.until is not None:
        entries = entries.filter(created_at__lte=filters.until)
    if after is not None:
        entries = entries.filter(created_at__lte=after.created_at).exclude(
            created_at=after.created_at, id__gte=after.entry_id
        )
    rows = list(entries.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    next_cursor = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_cursor = AuditCursor(rows[-1].created_at, rows[-1].pk)
    return AuditPage(rows, next_cursor)


def audit_usernames(limit: int = 200) -> list[str]:
    """Suggestions for the user filter: names that appear in the log."""
    names = (
        AuditEntry.objects.exclude(username="")
        .order_by("username")
        .values_list("username", flat=True)
        .distinct()[:limit]
    )
    return list(names)
