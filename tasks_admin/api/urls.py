"""/api/v1/ (the console's API), /api/ (Flower's), /metrics and /readyz.

Phase 2 (the actions) adds one line per endpoint here: the POST paths the issue names.
"""

from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from tasks_admin.api import actions, errors, flower, health, metrics, views
from tasks_admin.api import advisor as advisor_api
from tasks_admin.api import flower_actions as flower_api

app_name = "api"

v1 = [
    path("api/v1/tasks/", views.task_list, name="tasks"),
    path("api/v1/task-names/", views.task_names, name="task-names"),
    # Actions before the <path:> detail routes, which would swallow ".../retry/".
    path("api/v1/tasks/bulk/", actions.tasks_bulk, name="tasks-bulk"),
    path("api/v1/tasks/bulk/<int:run_id>/", actions.bulk_run, name="tasks-bulk-run"),
    path("api/v1/tasks/<path:task_id>/retry/", actions.task_retry, name="task-retry"),
    path("api/v1/tasks/<path:task_id>/revoke/", actions.task_revoke, name="task-revoke"),
    path("api/v1/workers/<path:hostname>/control/", actions.worker_control, name="worker-control"),
    path("api/v1/queues/<path:name>/purge/", actions.queue_purge, name="queue-purge"),
    path("api/v1/dead-letters/", actions.deadletter_list, name="dead-letters"),
    path(
        "api/v1/dead-letters/replay/",
        actions.deadletter_replay_many,
        name="dead-letters-replay",
    ),
    path(
        "api/v1/dead-letters/discard/",
        actions.deadletter_discard_many,
        name="dead-letters-discard",
    ),
    path("api/v1/dead-letters/<int:pk>/", actions.deadletter_detail, name="dead-letter"),
    path(
        "api/v1/dead-letters/<int:pk>/replay/",
        actions.deadletter_replay,
        name="dead-letter-replay",
    ),
    path(
        "api/v1/dead-letters/<int:pk>/discard/",
        actions.deadletter_discard,
        name="dead-letter-discard",
    ),
    # <path:>: task ids and hostnames are arbitrary strings and may contain "/".
    path("api/v1/tasks/<path:task_id>/", views.task_detail, name="task"),
    path("api/v1/workers/", views.worker_list, name="workers"),
    path("api/v1/workers/<path:hostname>/", views.worker_detail, name="worker"),
    path("api/v1/queues/", views.queue_list, name="queues"),
    path("api/v1/audit/", views.audit_list, name="audit"),
    path("api/v1/stats/", views.stats, name="stats"),
    path("api/v1/advisor/findings/", advisor_api.findings, name="advisor-findings"),
    path("api/v1/advisor/run/", advisor_api.run, name="advisor-run"),
    path("api/v1/alerts/rules/", advisor_api.alert_rules, name="alert-rules"),
    path("api/v1/alerts/notices/", advisor_api.alert_notices, name="alert-notices"),
]

urlpatterns = [
    *v1,
    # The schema answers scripts (a bearer token), so the login redirect must not apply;
    # the docs pages are for people and do redirect to the sign-in page.
    path(
        "api/v1/schema/",
        login_not_required(SpectacularAPIView.as_view(urlconf=v1)),
        name="schema",
    ),
    # DRF marks its views login-not-required (it authenticates itself); the docs pages are
    # for people, so an anonymous visit goes to the sign-in page instead of a bare 401.
    path(
        "api/v1/docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path(
        "api/v1/redoc/",
        login_required(SpectacularRedocView.as_view(url_name="api:schema")),
        name="redoc",
    ),
    # Flower 2.x's API, same paths and shapes (no trailing slashes, as in Flower).
    path("api/workers", flower.workers, name="flower-workers"),
    path("api/tasks", flower.tasks, name="flower-tasks"),
    path("api/task/types", flower.task_types, name="flower-task-types"),
    re_path(r"^api/task/info/(?P<task_id>.+)$", flower.task_info, name="flower-task-info"),
    re_path(r"^api/task/result/(?P<task_id>.+)$", flower.task_result, name="flower-task-result"),
    path("api/queues/length", flower.queues_length, name="flower-queues-length"),
    # Flower 2.x's action routes (flower_api.py): POST, form or query parameters.
    re_path(
        r"^api/worker/shutdown/(?P<workername>.+)$",
        flower_api.worker_shutdown,
        name="flower-worker-shutdown",
    ),
    re_path(
        r"^api/worker/pool/restart/(?P<workername>.+)$",
        flower_api.worker_pool_restart,
        name="flower-pool-restart",
    ),
    re_path(
        r"^api/worker/pool/grow/(?P<workername>.+)$",
        flower_api.worker_pool_grow,
        name="flower-pool-grow",
    ),
    re_path(
        r"^api/worker/pool/shrink/(?P<workername>.+)$",
        flower_api.worker_pool_shrink,
        name="flower-pool-shrink",
    ),
    re_path(
        r"^api/worker/pool/autoscale/(?P<workername>.+)$",
        flower_api.worker_pool_autoscale,
        name="flower-pool-autoscale",
    ),
    re_path(
        r"^api/worker/queue/add-consumer/(?P<workername>.+)$",
        flower_api.worker_queue_add_consumer,
        name="flower-add-consumer",
    ),
    re_path(
        r"^api/worker/queue/cancel-consumer/(?P<workername>.+)$",
        flower_api.worker_queue_cancel_consumer,
        name="flower-cancel-consumer",
    ),
    re_path(
        r"^api/task/async-apply/(?P<taskname>.+)$",
        flower_api.task_async_apply,
        name="flower-task-async-apply",
    ),
    re_path(
        r"^api/task/send-task/(?P<taskname>.+)$",
        flower_api.task_send_task,
        name="flower-task-send-task",
    ),
    re_path(r"^api/task/apply/(?P<taskname>.+)$", flower_api.task_apply, name="flower-task-apply"),
    re_path(r"^api/task/abort/(?P<task_id>.+)$", flower_api.task_abort, name="flower-task-abort"),
    re_path(
        r"^api/task/revoke/(?P<task_id>.+)$", flower_api.task_revoke, name="flower-task-revoke"
    ),
    re_path(
        r"^api/task/timeout/(?P<taskname>.+)$",
        flower_api.task_timeout,
        name="flower-task-timeout",
    ),
    re_path(
        r"^api/task/rate-limit/(?P<taskname>.+)$",
        flower_api.task_rate_limit,
        name="flower-task-rate-limit",
    ),
    path("metrics", metrics.metrics, name="metrics"),
    path("readyz", health.readyz, name="readyz"),
    # Anything else under /api/: a JSON 404 (or a redirect to the path with its slash).
    # [\s\S], not ".": a path may hold a newline (%0A), which "." does not match.
    re_path(r"^api(?:/[\s\S]*)?$", errors.not_found, name="not-found"),
]
