"""Reads for the dead letters pages, the task page and the API: lists, one letter, a task's.

Everything shown goes through tasks_admin.redaction: arguments named in
CONSOLE_REDACT_ARGS are hidden here, once, for every caller.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from tasks_admin.models import DeadLetter
from tasks_admin.redaction import redact_headers, redact_value, redacted_names

PAGE_SIZE = 50
TASK_CAP = 20
LIST_COLUMNS = (
    "id",
    "task_id",
    "name",
    "reason",
    "source",
    "queue",
    "exception",
    "exception_type",
    "received_at",
    "died_at",
    "state",
    "replayed_as",
    "replayed_by",
    "discarded_by",
    "body_complete",
)


@dataclass(frozen=True)
class DeadLetterFilters:
    name: str = ""
    exception: str = ""
    queue: str = ""
    state: str = ""
    # Only letters received within this long (None: any age).
    age: dt.timedelta | None = None

    @property
    def empty(self) -> bool:
        return not (self.name or self.exception or self.queue or self.state or self.age)


@dataclass
class DeadLetterPage:
    rows: list[DeadLetter]
    filters: DeadLetterFilters
    # The id to continue below (older letters), None on the last page.
    next_before: int | None
    counts: dict[str, int]


@dataclass
class DeadLetterView:
    """One letter as pages and the API show it: redacted, pretty-printed JSON text."""

    letter: DeadLetter
    args: Any
    kwargs: Any
    embed: Any
    headers: Any
    args_text: str
    kwargs_text: str
    embed_text: str
    headers_text: str
    properties_text: str
    x_death_text: str


def _filtered(filters: DeadLetterFilters, now: dt.datetime) -> QuerySet[DeadLetter]:
    rows = DeadLetter.objects.all()
    if filters.name:
        rows = rows.filter(name=filters.name)
    if filters.queue:
        rows = rows.filter(Q(queue=filters.queue) | Q(deadletter_queue=filters.queue))
    if filters.state:
        rows = rows.filter(state=filters.state)
    if filters.exception:
        rows = rows.filter(
            Q(exception_type__iexact=filters.exception)
            | Q(exception__icontains=filters.exception)
            | Q(reason__iexact=filters.exception)
        )
    if filters.age is not None:
        rows = rows.filter(received_at__gte=now - filters.age)
    return rows


def deadletter_page(
    filters: DeadLetterFilters, *, before: int | None = None, now: dt.datetime | None = None
) -> DeadLetterPage:
    """Newest first, PAGE_SIZE at a time, keyset-paginated on the id."""
    now = now or timezone.now()
    rows = _filtered(filters, now)
    counts = {state: rows.filter(state=state).count() for state in DeadLetter.State.values}
    if before is not None:
        rows = rows.filter(id__lt=before)
    page = list(rows.order_by("-id").only(*LIST_COLUMNS)[: PAGE_SIZE + 1])
    next_before = page[PAGE_SIZE - 1].pk if len(page) > PAGE_SIZE else None
    return DeadLetterPage(
        rows=page[:PAGE_SIZE], filters=filters, next_before=next_before, counts=counts
    )


def deadletter_filter_choices() -> dict[str, list[str]]:
    """Task names and queues seen in dead letters, for the filter's suggestions."""
    return {
        "names": list(
            DeadLetter.objects.exclude(name="")
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()[:200]
        ),
        "queues": list(
            DeadLetter.objects.exclude(queue="")
            .order_by("queue")
            .values_list("queue", flat=True)
            .distinct()[:200]
        ),
    }


def deadletter_view(pk: int) -> DeadLetterView | None:
    letter = DeadLetter.objects.filter(pk=pk).first()
    if letter is None:
        return None
    names = redacted_names()
    args = redact_value(letter.args, names)
    kwargs = redact_value(letter.kwargs, names)
    embed = redact_value(letter.embed, names)
    headers = redact_headers(letter.headers, names)
    return DeadLetterView(
        letter=letter,
        args=args,
        kwargs=kwargs,
        embed=embed,
        headers=headers,
        args_text=_pretty(args),
        kwargs_text=_pretty(kwargs),
        embed_text=_pretty(embed),
        headers_text=_pretty(headers),
        properties_text=_pretty(letter.properties),
        x_death_text=_pretty(letter.x_death) if letter.x_death else "",
    )


def deadletters_of_task(task_id: str) -> list[DeadLetter]:
    """The dead letters of one task (the task page), newest first."""
    return list(
        DeadLetter.objects.filter(task_id=task_id)
        .order_by("-received_at", "-id")
        .only(*LIST_COLUMNS)[:TASK_CAP]
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
