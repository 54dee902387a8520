"""A stand-in action endpoint wired the way phase 2's are, to test the plumbing: the
request's Actor, services.perform (role check and audit), errors mapped to JSON."""

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response

from tasks_admin import services
from tasks_admin.api.auth import actor_of
from tasks_admin.api.views import action_response, endpoint


@endpoint(["POST"])
def retry(request: Request, task_id: str) -> Response:
    def run() -> services.ActionResult:
        if task_id == "running":
            raise services.ActionConflict("The task is running; revoke it first.")
        return services.ActionResult(f"Retried {task_id}.", {"new_task_id": "n-1"})

    result = services.perform(actor_of(request), "task.retry", targets=[task_id], run=run)
    return action_response(result)


urlpatterns = [
    path("test-actions/<str:task_id>/retry/", retry),
    path("", include("console.urls")),
]
