"""Dead letters (list, detail), and the actions that publish original messages again:
replay and discard dead letters, retry a task (its button is on the task page).

Actions are POST forms with a CSRF token. With htmx the outcome (what was done, or why
not) is swapped into the page as a fragment; without JavaScript a small page says it.
Roles are checked by the services (and every attempt audited there), not here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tasks_admin import services
from tasks_admin.models import DeadLetter
from tasks_admin.roles import Actor, role_of
from tasks_admin.selectors import deadletters as selectors
from tasks_admin.views.filtering import FilterForm
from tasks_admin.views.rendering import is_htmx, page_or_partial

_AGE = re.compile(r"^(\d{1,6})\s*(m|min|h|d|w)$", re.IGNORECASE)
_AGE_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
AGE_CHOICES = [
    ("", "Any age"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
]


class DeadLetterListForm(FilterForm):
    name = forms.CharField(required=False, max_length=255)
    exception = forms.CharField(required=False, max_length=255)
    queue = forms.CharField(required=False, max_length=255)
    state = forms.ChoiceField(
        required=False,
        choices=[("", "Any state"), *DeadLetter.State.choices],
        error_messages={"invalid_choice": "Unknown state “%(value)s”: new, replayed, discarded."},
    )
    age = forms.CharField(required=False, max_length=16)
    before = forms.IntegerField(required=False, min_value=1)

    def clean_age(self) -> dt.timedelta | None:
        text = (self.cleaned_data.get("age") or "").strip()
        if not text:
            return None
        match = _AGE.match(text)
        if not match:
            raise forms.ValidationError(
                "“%(value)s” is not an age: use 30m, 1h, 24h or 7d.", params={"value": text}
            )
        return dt.timedelta(seconds=int(match[1]) * _AGE_SECONDS[match[2].lower()])

    def filters(self) -> selectors.DeadLetterFilters:
        data = self.cleaned_data
        return selectors.DeadLetterFilters(
            name=data["name"].strip(),
            exception=data["exception"].strip(),
            queue=data["queue"].strip(),
            state=data["state"],
            age=data["age"],
        )


def deadletter_list(request: HttpRequest) -> HttpResponse:
    form = DeadLetterListForm(request.GET)
    valid = form.is_valid()
    page = None
    next_url = ""
    if valid:
        page = selectors.deadletter_page(form.filters(), before=form.cleaned_data["before"])
        if page.next_before is not None:
            query = request.GET.copy()
            query["before"] = str(page.next_before)
            next_url = f"{reverse('tasks_admin:deadletters')}?{query.urlencode()}"
    context = {
        "page": page,
        "errors": form.error_messages(),
        "values": {key: request.GET.get(key, "") for key in ("name", "exception", "queue")},
        "state_value": request.GET.get("state", ""),
        "age_value": request.GET.get("age", ""),
        "state_choices": [("", "Any state"), *DeadLetter.State.choices],
        "age_choices": AGE_CHOICES,
        "choices": None if is_htmx(request) else selectors.deadletter_filter_choices(),
        "next_url": next_url,
        "back": request.get_full_path(),
    }
    return page_or_partial(
        request,
        "tasks_admin/deadletters.html",
        "tasks_admin/partials/deadletters_body.html",
        context,
        status=200 if valid else 400,
    )


def deadletter_detail(request: HttpRequest, pk: int) -> HttpResponse:
    view = selectors.deadletter_view(pk)
    if view is None:
        raise Http404("No such dead letter.")
    return page_or_partial(
        request,
        "tasks_admin/deadletter.html",
        "tasks_admin/partials/deadletter_body.html",
        {"view": view, "letter": view.letter, "back": request.get_full_path()},
    )


@require_POST
def deadletter_replay(request: HttpRequest) -> HttpResponse:
    ids = request.POST.getlist("id")
    queue = request.POST.get("queue", "")
    return _act(
        request,
        lambda actor: services.deadletter_replay(actor=actor, ids=ids, queue=queue),
        title="Replay dead letters",
    )


@require_POST
def deadletter_discard(request: HttpRequest) -> HttpResponse:
    ids = request.POST.getlist("id")
    return _act(
        request,
        lambda actor: services.deadletter_discard(actor=actor, ids=ids),
        title="Discard dead letters",
    )


@require_POST
def task_retry(request: HttpRequest) -> HttpResponse:
    task_id = request.POST.get("task_id", "")
    queue = request.POST.get("queue", "")
    keep_chord = request.POST.get("keep_chord") in ("on", "true", "1")
    return _act(
        request,
        lambda actor: services.task_retry(
            actor=actor, task_id=task_id, queue=queue, keep_chord=keep_chord
        ),
        title="Retry task",
    )


def actor_for(request: HttpRequest) -> Actor:
    """The signed-in user acting through a page, as services check and audit it."""
    return Actor(
        user=request.user,
        role=role_of(request.user),
        source="page",
        address=request.META.get("REMOTE_ADDR", "") or "",
    )


def _act(
    request: HttpRequest, run: Callable[[Actor], services.ActionResult], *, title: str
) -> HttpResponse:
    """Run an action; the outcome as an htmx fragment or, without JavaScript, a page.

    htmx swaps only 2xx responses by default, so a refusal reaches an htmx page as 200
    with ``data-outcome`` (and the ``X-Console-Outcome`` header) naming the error; a plain
    form post gets the real status (403 refused, 409 conflict, ...).
    """
    try:
        result = run(actor_for(request))
    except services.ActionError as error:
        context: dict[str, Any] = {"ok": False, "message": error.detail, "code": error.code}
        status = error.status
    else:
        context = {"ok": True, "message": result.detail, "code": "ok", "data": result.data}
        status = 200
    context["links"] = _result_links(context.get("data") or {})
    # htmx: the new state of each letter the action touched, swapped in out of band.
    context["changed"] = _changed_letters(context.get("data") or {}) if is_htmx(request) else []
    context["title"] = title
    context["back"] = _safe_back(request)
    if is_htmx(request):
        response = render(request, "tasks_admin/partials/action_outcome.html", context)
    else:
        response = render(request, "tasks_admin/action_outcome.html", context, status=status)
    response["X-Console-Outcome"] = context["code"]
    return response


def _result_links(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, url) of the tasks an action started, for the outcome message."""
    links = []
    if data.get("task_id"):
        links.append((data["task_id"], reverse("tasks_admin:task", args=[data["task_id"]])))
    for pk, task_id in (data.get("replayed") or {}).items():
        links.append((f"#{pk} → {task_id}", reverse("tasks_admin:task", args=[task_id])))
    return links


def _changed_letters(data: dict[str, Any]) -> list[DeadLetter]:
    ids = [*(data.get("replayed") or {}), *(data.get("discarded") or [])]
    if data.get("dead_letter"):
        ids.append(data["dead_letter"])
    return list(DeadLetter.objects.filter(pk__in=[int(pk) for pk in ids]))


def _safe_back(request: HttpRequest) -> str:
    back = request.POST.get("back", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return reverse("tasks_admin:deadletters")
