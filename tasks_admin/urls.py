from django.contrib.auth import views as auth_views
from django.urls import path

from tasks_admin.views import actions as action_views
from tasks_admin.views import audit as audit_views
from tasks_admin.views import dashboard, failures, health, queues, tasks, workers

app_name = "tasks_admin"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("tasks/", tasks.task_list, name="tasks"),
    # <path:>: task ids and hostnames are arbitrary strings and may contain "/".
    path("tasks/<path:task_id>/", tasks.task_detail, name="task"),
    path("failures/", failures.failure_list, name="failures"),
    path("workers/", workers.worker_list, name="workers"),
    # path, not str: a hostname is whatever the worker says (-n), "/" included.
    path("workers/<path:hostname>/", workers.worker_detail, name="worker"),
    path("queues/", queues.queue_list, name="queues"),
    path("healthz", health.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Actions: POST only, under their own prefix (tasks/<path:>/ would swallow a suffix).
    path("actions/tasks/revoke/<path:task_id>", action_views.task_revoke, name="task-revoke"),
    path(
        "actions/tasks/terminate/<path:task_id>", action_views.task_terminate, name="task-terminate"
    ),
    path("actions/tasks/bulk/", action_views.tasks_bulk, name="tasks-bulk"),
    path("actions/bulk/<int:run_id>/", action_views.bulk_run, name="bulk-run"),
    path("actions/queues/purge/", action_views.queue_purge, name="queue-purge"),
    path("actions/workers/control/", action_views.worker_control, name="worker-control"),
    path("audit/", audit_views.audit_list, name="audit"),
]
