"""The task list (filters in the URL, keyset pages, "N new tasks") and the task page."""

import datetime as dt
from typing import Any, ClassVar
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from tasks_admin.selectors import task_story as story_selectors
from tasks_admin.selectors import tasks as task_selectors
from tasks_admin.selectors.tasks import Cursor, TaskFilters
from tasks_admin.views.filtering import TimeRangeForm
from tasks_admin.views.rendering import is_htmx, page_or_partial

SORT_LABELS = {"received": "Received (newest first)", "started": "Started (newest first)"}
SORT_LABELS["runtime"] = "Runtime (slowest first)"
MATCH_LABELS = {"auto": "Id or text", "id": "Task id", "text": "Text"}
# Query parameters of a position in a list, not of the filter itself.
POSITION_PARAMS = ("cursor", "newer_than")


class StatesField(forms.MultipleChoiceField):
    def to_python(self, value: Any) -> list[str]:
        return [v.strip().upper() for v in super().to_python(value) if v.strip()]


class TaskListForm(TimeRangeForm):
    """The list's query string. Every value is optional; bad ones are form errors."""

    error_labels: ClassVar[dict[str, str]] = {
        **TimeRangeForm.error_labels,
        "newer_than": "New tasks",
        "search": "Search",
    }

    state = StatesField(
        required=False,
        choices=[(s, s) for s in task_selectors.KNOWN_STATES],
        error_messages={
            "invalid_choice": "Unknown state “%(value)s”; known states: "
            + ", ".join(task_selectors.KNOWN_STATES)
            + "."
        },
    )
    name = forms.CharField(required=False, max_length=255)
    worker = forms.CharField(required=False, max_length=255)
    queue = forms.CharField(required=False, max_length=255)
    search = forms.CharField(required=False, max_length=255)
    match = forms.ChoiceField(
        required=False,
        choices=[(m, m) for m in task_selectors.MATCHES],
        error_messages={"invalid_choice": "Unknown search kind “%(value)s”: use auto, id or text."},
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[(s, s) for s in task_selectors.SORTS],
        error_messages={
            "invalid_choice": "Unknown sort “%(value)s”: use received, started or runtime."
        },
    )
    cursor = forms.CharField(required=False, max_length=600)
    newer_than = forms.CharField(required=False, max_length=600)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        sort = data.get("sort") or "received"
        for key, sort_of_key in (("cursor", sort), ("newer_than", "received")):
            text = data.get(key)
            if text:
                try:
                    data[key] = Cursor.decode(text, sort=sort_of_key)
                except ValueError:
                    self.add_error(key, "This link's position in the list is not valid.")
            else:
                data[key] = None
        since, until = data.get("from"), data.get("to")
        if since and until and since > until:
            self.add_error("to", "“To” is before “from”.")
        return data

    def filters(self) -> TaskFilters:
        data = self.cleaned_data
        return TaskFilters(
            states=tuple(dict.fromkeys(data["state"])),
            name=data["name"],
            worker=data["worker"],
            queue=data["queue"],
            since=data["from"],
            until=data["to"],
            search=data["search"],
            match=data["match"] or "auto",
            sort=data["sort"] or "received",
        )


def _list_url(request: HttpRequest, **changes: str) -> str:
    """This list's URL with ``changes`` applied (an empty value removes a parameter)."""
    query = request.GET.copy()
    for key in POSITION_PARAMS:
        query.pop(key, None)
    for key, value in changes.items():
        query.setlist(key, [value] if value else [])
    pairs = [(k, v) for k, values in query.lists() for v in values if v != ""]
    base = reverse("tasks_admin:tasks")
    return f"{base}?{urlencode(pairs)}" if pairs else base


def task_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    form = TaskListForm(request.GET, now=now)
    valid = form.is_valid()
    if request.GET.get("newer_than"):
        return _newer(request, form, valid, now)
    page = None
    if valid:
        page = task_selectors.task_page(form.filters(), after=form.cleaned_data["cursor"], now=now)
    context = {
        "page": page,
        "errors": form.error_messages(),
        "values": {key: request.GET.get(key, "") for key in form.fields if key != "state"},
        "state_choices": [
            (state, state in {s.strip().upper() for s in request.GET.getlist("state")})
            for state in task_selectors.KNOWN_STATES
        ],
        "sort_labels": SORT_LABELS,
        "match_labels": MATCH_LABELS,
        "choices": None if is_htmx(request) else task_selectors.filter_choices(now),
        "scan_cap": task_selectors.SCAN_CAP,
        "default_window_hours": int(task_selectors.DEFAULT_WINDOW.total_seconds() // 3600),
        "reload_url": _list_url(request),
        "clear_url": reverse("tasks_admin:tasks"),
    }
    if page is not None:
        context.update(_page_links(request, page))
    return page_or_partial(
        request,
        "tasks_admin/tasks.html",
        "tasks_admin/partials/task_results.html",
        context,
        status=200 if valid else 400,
    )


def _page_links(request: HttpRequest, page: task_selectors.TaskPage) -> dict[str, str]:
    links = {"live_url": _live_url(request, page)}
    if page.next_cursor is not None:
        links["next_url"] = _list_url(request, cursor=page.next_cursor.encode())
    if page.newest is not None:
        links["newer_url"] = _list_url(request, newer_than=page.newest.encode())
    window = page.window
    if window is not None and window.full and window.oldest is not None and window.kind == "time":
        links["older_url"] = _list_url(request, to=window.oldest.isoformat())
    if page.mode in ("id", "prefix"):
        links["text_url"] = _list_url(request, match="text")
    elif (
        page.mode == "text"
        and request.GET.get("match") != "text"
        and not any(c.isspace() for c in page.filters.search)
    ):
        links["id_url"] = _list_url(request, match="id")
    return links


def _live_url(request: HttpRequest, page: task_selectors.TaskPage) -> str:
    """The list's websocket: its filter, its page, and its top (what counts as new)."""
    query = request.GET.copy()
    query.pop("newer_than", None)
    if page.newest is not None:
        query["newer_than"] = page.newest.encode()
    return f"/ws/tasks/?{query.urlencode()}"


def _newer(request: HttpRequest, form: TaskListForm, valid: bool, now: dt.datetime) -> HttpResponse:
    """The "N new tasks" fragment for a list whose top was ``newer_than``."""
    context: dict[str, Any] = {"errors": form.error_messages(), "reload_url": _list_url(request)}
    if valid:
        filters = form.filters()
        cursor = form.cleaned_data["newer_than"]
        count = task_selectors.count_newer(filters, cursor, now=now)
        context.update(
            count=count,
            count_capped=count > task_selectors.NEWER_CAP,
            newer_cap=task_selectors.NEWER_CAP,
            newer_url=request.get_full_path(),
        )
    response = render(
        request, "tasks_admin/partials/tasks_new.html", context, status=200 if valid else 400
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


def task_detail(request: HttpRequest, task_id: str) -> HttpResponse:
    # PostgreSQL text cannot hold NUL, so no task has such an id.
    story = None if "\x00" in task_id else story_selectors.task_story(task_id)
    if story is None:
        return page_or_partial(
            request,
            "tasks_admin/task_missing.html",
            "tasks_admin/partials/task_missing.html",
            {"task_id": task_id},
            status=404,
        )
    return page_or_partial(
        request,
        "tasks_admin/task.html",
        "tasks_admin/partials/task_page.html",
        {"story": story, "task": story.task, "lineage": story.lineage},
    )


def task_controls(request: HttpRequest) -> HttpResponse:
    """The task page's controls for this user, asked again when a live push changed the
    task's state (pushed fragments are the same for everybody and hold no forms)."""
    task_id = request.GET.get("task_id", "")
    story = None if not task_id or "\x00" in task_id else story_selectors.task_story(task_id)
    if story is None:
        return HttpResponse(status=404)
    return render(
        request,
        "tasks_admin/partials/task_controls.html",
        {"story": story, "task": story.task, "lineage": story.lineage},
    )
