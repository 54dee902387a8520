from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tasks_admin.selectors import dashboard as dashboard_selectors
from tasks_admin.views.rendering import page_or_partial


def dashboard(request: HttpRequest) -> HttpResponse:
    return page_or_partial(
        request,
        "tasks_admin/dashboard.html",
        "tasks_admin/partials/dashboard_body.html",
        {"dash": dashboard_selectors.dashboard(now=timezone.now())},
    )
