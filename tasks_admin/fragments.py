"""The HTML a live push sends: the same partials the pages include, rendered without a
request (so a fragment holds nothing per user: no CSRF token, no role-dependent control).

Each function returns top-level elements with ids that exist on the page; the htmx
websocket extension swaps every top-level element of a message by its id. The collector's
ticker calls these once per tick for everybody; consumers call them once on connect, so a
page that reconnects shows the present, not what it missed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.template.loader import render_to_string

from tasks_admin.selectors import dashboard as dashboard_selectors
from tasks_admin.selectors import failures as failure_selectors
from tasks_admin.selectors import queues as queue_selectors
from tasks_admin.selectors import task_story as story_selectors
from tasks_admin.selectors import tasks as task_selectors
from tasks_admin.selectors import workers as worker_selectors

PARTIALS = "tasks_admin/partials/"

# The dashboard's parts that change with every task; the runtime table is costlier and is
# refreshed on the slow beat (dashboard_runtimes).
DASHBOARD_FAST = (
    "dashboard_as_of.html",
    "dashboard_cards.html",
    "dashboard_charts.html",
    "dashboard_queues.html",
    "dashboard_workers.html",
)


def _render(names: tuple[str, ...] | list[str], context: dict[str, Any]) -> str:
    return "".join(render_to_string(PARTIALS + name, context) for name in names)


def dashboard_parts(now: dt.datetime, *, with_runtimes: bool) -> dict[str, str]:
    """The dashboard's live parts by name ("as_of" says when: it differs every time)."""
    dash = dashboard_selectors.dashboard(now=now, with_runtimes=with_runtimes)
    names = [*DASHBOARD_FAST, "dashboard_runtimes.html"] if with_runtimes else DASHBOARD_FAST
    context = {"dash": dash}
    return {
        name.removeprefix("dashboard_").removesuffix(".html"): _render((name,), context)
        for name in names
    }


def dashboard(now: dt.datetime, *, with_runtimes: bool) -> str:
    return "".join(dashboard_parts(now, with_runtimes=with_runtimes).values())


def workers(now: dt.datetime) -> str:
    return _render(
        ("workers_body.html",),
        {
            "workers": worker_selectors.worker_rows(now=now),
            "counts": worker_selectors.worker_counts(),
        },
    )


def worker(hostname: str, now: dt.datetime) -> str:
    detail = worker_selectors.worker_detail(hostname, now=now)
    if detail is None:
        return ""
    context = {"detail": detail, "worker": detail.row.worker}
    return _render(("worker_body.html",), {**context, "started_cap": worker_selectors.STARTED_CAP})


def queues(now: dt.datetime) -> str:
    rows = queue_selectors.queue_rows(now=now, limit=queue_selectors.PAGE_LIMIT)
    totals = queue_selectors.queue_totals()
    more = max(totals.queues - len(rows), 0)
    return _render(("queues_body.html",), {"queues": rows, "totals": totals, "more": more})


def failures(window: str, now: dt.datetime) -> str:
    groups = failure_selectors.failure_groups(window=window, now=now)
    return _render(("failures_body.html",), {"failures": groups})


def task(task_id: str) -> str:
    story = story_selectors.task_story(task_id)
    if story is None:
        return ""
    context = {"story": story, "task": story.task, "lineage": story.lineage}
    head = _render(("task_head.html",), context)
    return f'{head}<div id="task-body">{_render(("task_body.html",), context)}</div>'


def task_row(task: task_selectors.TaskRow) -> str:
    """One row of the task list, a top-level ``<tr id=...>`` (see task_links.row_id)."""
    return render_to_string(PARTIALS + "task_row.html", {"task": task})


def tasks_new(
    *, count: int, reload_url: str, newer_url: str, cap: int = task_selectors.NEWER_CAP
) -> str:
    """The "N new tasks" notice of one list (its URLs are the client's own filter)."""
    html = _render(
        ("tasks_new.html",),
        {
            "count": min(count, cap + 1),
            "count_capped": count > cap,
            "newer_cap": cap,
            "reload_url": reload_url,
            "newer_url": newer_url,
        },
    )
    return f'<div id="tasks-new" class="tasks-new">{html}</div>'
