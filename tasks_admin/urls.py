from django.contrib.auth import views as auth_views
from django.urls import path

from tasks_admin.views import dashboard, failures, health, queues, tasks, tokens, workers

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
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.token_revoke, name="token-revoke"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
