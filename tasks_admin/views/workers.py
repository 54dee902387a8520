from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone

from tasks_admin.selectors import workers as worker_selectors
from tasks_admin.views.rendering import page_or_partial


def worker_list(request: HttpRequest) -> HttpResponse:
    return page_or_partial(
        request,
        "tasks_admin/workers.html",
        "tasks_admin/partials/workers_body.html",
        {
            "workers": worker_selectors.worker_rows(now=timezone.now()),
            "counts": worker_selectors.worker_counts(),
        },
    )


def worker_detail(request: HttpRequest, hostname: str) -> HttpResponse:
    detail = worker_selectors.worker_detail(hostname, now=timezone.now())
    if detail is None:
        raise Http404("No such worker")
    return page_or_partial(
        request,
        "tasks_admin/worker.html",
        "tasks_admin/partials/worker_body.html",
        {
            "detail": detail,
            "worker": detail.row.worker,
            "started_cap": worker_selectors.STARTED_CAP,
        },
    )
