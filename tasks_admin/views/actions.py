"""Action views: parse the form, call the service, show what happened.

An htmx request (every form here posts with hx-post) gets a fragment swapped into the page:
the confirmation, or the refusal with its reason and the action's HTTP status. A plain
POST (no JavaScript) is redirected back to the page it came from with a Django message.
Services check the role and audit the attempt; views never decide who may act.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from tasks_admin import services
from tasks_admin.models import BulkRun
from tasks_admin.roles import Actor, role_of
from tasks_admin.services import tasks as task_services
from tasks_admin.services import workers as worker_services
from tasks_admin.views.rendering import is_htmx
from tasks_admin.views.tasks import TaskListForm

RESULT = "tasks_admin/partials/action_result.html"
# The task list's query parameters: the filter a bulk action acts on.
FILTER_PARAMS = ("state", "name", "worker", "queue", "from", "to", "search", "match", "sort")


def page_actor(request: HttpRequest) -> Actor:
    return Actor(
        user=request.user,
        role=role_of(request.user),
        source="page",
        address=request.META.get("REMOTE_ADDR", "") or "",
    )


def _back(request: HttpRequest, default: str) -> str:
    """Where a plain POST returns: the form's ``next`` if it is on this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _respond(
    request: HttpRequest,
    *,
    back: str,
    result: services.ActionResult | None = None,
    error: services.ActionError | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    if is_htmx(request):
        context = {"result": result, "error": error, **(extra or {})}
        response = render(request, RESULT, context, status=error.status if error else 200)
        patch_vary_headers(response, ["HX-Request"])
        return response
    if error is not None:
        messages.error(request, error.detail)
    elif result is not None:
        messages.success(request, result.detail)
    return HttpResponseRedirect(_back(request, back))


def _run(request: HttpRequest, back: str, call: Any, **extra: Any) -> HttpResponse:
    try:
        result = call()
    except services.ActionError as error:
        return _respond(request, back=back, error=error, extra=extra)
    return _respond(request, back=back, result=result, extra=extra)


@require_POST
def task_revoke(request: HttpRequest, task_id: str) -> HttpResponse:
    back = reverse("tasks_admin:task", args=[task_id])
    return _run(
        request, back, lambda: services.task_revoke(actor=page_actor(request), task_id=task_id)
    )


@require_POST
def task_terminate(request: HttpRequest, task_id: str) -> HttpResponse:
    back = reverse("tasks_admin:task", args=[task_id])
    signal = request.POST.get("signal", "SIGTERM")
    return _run(
        request,
        back,
        lambda: services.task_terminate(actor=page_actor(request), task_id=task_id, signal=signal),
    )


@require_POST
def queue_purge(request: HttpRequest) -> HttpResponse:
    queue = request.POST.get("queue", "")
    confirm = request.POST.get("confirm", "")
    return _run(
        request,
        reverse("tasks_admin:queues"),
        lambda: services.queue_purge(actor=page_actor(request), queue=queue, confirm=confirm),
    )


@require_POST
def worker_control(request: HttpRequest) -> HttpResponse:
    hostname = request.POST.get("hostname", "")
    command = request.POST.get("command", "")
    spec = worker_services.COMMANDS.get(command, ())
    # Only the command's own fields: the form for another command may share the page.
    arguments = {arg.name: request.POST[arg.name] for arg in spec if arg.name in request.POST}
    back = reverse("tasks_admin:worker", args=[hostname]) if hostname else "/"
    return _run(
        request,
        back,
        lambda: services.worker_control(
            actor=page_actor(request), hostname=hostname, command=command, **arguments
        ),
        show_reply=True,
    )


def _filter_query(data: Any) -> str:
    pairs = [(key, value) for key in FILTER_PARAMS for value in data.getlist(key) if value != ""]
    return urlencode(pairs)


@require_POST
def tasks_bulk(request: HttpRequest) -> HttpResponse:
    """Step "count": a dry run showing how many tasks match, with the confirm button.
    Step "run": start the bulk action and show (htmx) or open (plain POST) its progress."""
    action = request.POST.get("action", "")
    step = request.POST.get("step", "count")
    query = _filter_query(request.POST)
    list_url = reverse("tasks_admin:tasks") + (f"?{query}" if query else "")
    form = TaskListForm(request.POST, now=timezone.now())
    if not form.is_valid():
        error = services.ActionInvalid("; ".join(form.error_messages()))
        return _respond(request, back=list_url, error=error)
    filters = form.filters()
    actor = page_actor(request)
    try:
        result = services.tasks_bulk(
            actor=actor,
            action=action,
            filters=filters,
            dry_run=step != "run",
            query=query,
            wait=False,
        )
    except services.ActionError as error:
        return _respond(request, back=list_url, error=error)
    if step != "run":
        context = {
            "result": result,
            "action": action,
            "count": result.data["count"],
            "over_cap": result.data["over_cap"],
            "filter_pairs": [(k, v) for k in FILTER_PARAMS for v in request.POST.getlist(k)],
            "list_url": list_url,
            "states": task_services.BULK_STATES.get(action, ()),
        }
        if is_htmx(request):
            return render(request, "tasks_admin/partials/actions_bulk_confirm.html", context)
        return render(request, "tasks_admin/bulk_confirm.html", context)
    run_url = reverse("tasks_admin:bulk-run", args=[result.data["run_id"]])
    if is_htmx(request):
        run = BulkRun.objects.get(pk=result.data["run_id"])
        return render(request, "tasks_admin/partials/actions_bulk_progress.html", {"run": run})
    messages.success(request, result.detail)
    return HttpResponseRedirect(run_url)


@require_GET
def bulk_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """A bulk run's progress: the fragment htmx polls while it runs, or the page."""
    run = get_object_or_404(BulkRun, pk=run_id)
    context = {"run": run, "list_url": reverse("tasks_admin:tasks") + f"?{run.query}"}
    template = (
        "tasks_admin/partials/actions_bulk_progress.html"
        if is_htmx(request)
        else "tasks_admin/bulk_run.html"
    )
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
