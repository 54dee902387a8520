from django.contrib.auth import views as auth_views
from django.urls import path

from tasks_admin.views import actions, audit, dashboard, failures, health, queues, tasks, workers

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
    path("actions/tasks/revoke/<path:task_id>", actions.task_revoke, name="task-revoke"),
    path("actions/tasks/terminate/<path:task_id>", actions.task_terminate, name="task-terminate"),
    path("actions/tasks/bulk/", actions.tasks_bulk, name="tasks-bulk"),
    path("actions/bulk/<int:run_id>/", actions.bulk_run, name="bulk-run"),
    path("actions/queues/purge/", actions.queue_purge, name="queue-purge"),
    path("actions/workers/control/", actions.worker_control, name="worker-control"),
    path("audit/", audit.audit_list, name="audit"),
]
