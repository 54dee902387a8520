from django.contrib.auth import views as auth_views
from django.urls import path

from tasks_admin.views import actions as action_views
from tasks_admin.views import (
    advisor,
    alerts,
    dashboard,
    deadletters,
    failures,
    health,
    queues,
    tasks,
    tokens,
    workers,
)
from tasks_admin.views import audit as audit_views

app_name = "tasks_admin"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("tasks/", tasks.task_list, name="tasks"),
    # <path:>: task ids and hostnames are arbitrary strings and may contain "/".
    path("tasks/<path:task_id>/", tasks.task_detail, name="task"),
    # The id in the query: a task id may end in anything, "/controls/" included.
    path("task-controls/", tasks.task_controls, name="task-controls"),
    path("failures/", failures.failure_list, name="failures"),
    path("workers/", workers.worker_list, name="workers"),
    # path, not str: a hostname is whatever the worker says (-n), "/" included.
    path("workers/<path:hostname>/", workers.worker_detail, name="worker"),
    path("queues/", queues.queue_list, name="queues"),
    path("advisor/", advisor.advisor_page, name="advisor"),
    path("advisor/run/", advisor.advisor_run, name="advisor-run"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/rules/", alerts.alert_rule_create, name="alert-rule-create"),
    path("alerts/rules/<int:rule_id>/", alerts.alert_rule_update, name="alert-rule-update"),
    path("alerts/rules/<int:rule_id>/delete/", alerts.alert_rule_delete, name="alert-rule-delete"),
    path("alerts/rules/<int:rule_id>/test/", alerts.alert_rule_test, name="alert-rule-test"),
    path("healthz", health.healthz, name="healthz"),
    path("deadletters/", deadletters.deadletter_list, name="deadletters"),
    path("deadletters/<int:pk>/", deadletters.deadletter_detail, name="deadletter"),
    path("deadletters/replay/", deadletters.deadletter_replay, name="deadletter-replay"),
    path("deadletters/discard/", deadletters.deadletter_discard, name="deadletter-discard"),
    # Not under tasks/: a task id may end in anything, "/retry/" included.
    path("retry/", deadletters.task_retry, name="task-retry"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.token_revoke, name="token-revoke"),
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
