from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from tasks_admin import services
from tasks_admin.selectors import advisor as advisor_selectors
from tasks_admin.views.actor import page_actor
from tasks_admin.views.rendering import is_htmx, page_or_partial


def _render(request: HttpRequest, status: int = 200) -> HttpResponse:
    return page_or_partial(
        request,
        "tasks_admin/advisor.html",
        "tasks_admin/partials/advisor_body.html",
        {
            "findings": list(advisor_selectors.open_findings()),
            "resolved": advisor_selectors.resolved_findings(),
            "last_run": advisor_selectors.last_run(),
        },
        status=status,
    )


@require_GET
def advisor_page(request: HttpRequest) -> HttpResponse:
    return _render(request)


@require_POST
def advisor_run(request: HttpRequest) -> HttpResponse:
    try:
        result = services.advisor_run(actor=page_actor(request))
    except services.ActionError as error:
        messages.error(request, error.detail)
        return _render(request, status=error.status)
    messages.success(request, result.detail)
    if is_htmx(request):
        return _render(request)
    return redirect("tasks_admin:advisor")
