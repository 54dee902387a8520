from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tasks_admin.selectors import failures as failure_selectors
from tasks_admin.views.rendering import page_or_partial


def failure_list(request: HttpRequest) -> HttpResponse:
    window = failure_selectors.window_or_default(request.GET.get("window"))
    return page_or_partial(
        request,
        "tasks_admin/failures.html",
        "tasks_admin/partials/failures_live.html",
        {
            "failures": failure_selectors.failure_groups(window=window, now=timezone.now()),
            "windows": [(key, label) for key, (label, _) in failure_selectors.WINDOWS.items()],
        },
    )
