from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tasks_admin.selectors import queues as queue_selectors
from tasks_admin.views.rendering import page_or_partial


def queue_list(request: HttpRequest) -> HttpResponse:
    rows = queue_selectors.queue_rows(now=timezone.now(), limit=queue_selectors.PAGE_LIMIT)
    totals = queue_selectors.queue_totals()
    return page_or_partial(
        request,
        "tasks_admin/queues.html",
        "tasks_admin/partials/queues_body.html",
        {"queues": rows, "totals": totals, "more": max(totals.queues - len(rows), 0)},
    )
