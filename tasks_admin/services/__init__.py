"""Every action the console can take (HackSoft style: ``services.task_retry(...)``).

Import the package as a module, ``from tasks_admin import services``, so a view named
like a service cannot shadow it. Each service is keyword-only, takes an ``Actor`` and goes
through ``perform`` (role check + audit). One module per entity; re-export here.
"""

from tasks_admin.services.advisor import advisor_run
from tasks_admin.services.alerts import (
    RuleFields,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_test_send,
)
from tasks_admin.services.base import (
    ActionConflict,
    ActionError,
    ActionInvalid,
    ActionNotFound,
    ActionRefused,
    ActionResult,
    ActionUnavailable,
    perform,
)
from tasks_admin.services.queues import queue_purge
from tasks_admin.services.replay import deadletter_discard, deadletter_replay, task_retry
from tasks_admin.services.tasks import task_revoke, task_terminate, tasks_bulk
from tasks_admin.services.tasks_send import task_send
from tasks_admin.services.tokens import api_token_create, api_token_revoke
from tasks_admin.services.workers import worker_control

__all__ = [
    "ActionConflict",
    "ActionError",
    "ActionInvalid",
    "ActionNotFound",
    "ActionRefused",
    "ActionResult",
    "ActionUnavailable",
    "RuleFields",
    "advisor_run",
    "alert_rule_create",
    "alert_rule_delete",
    "alert_rule_update",
    "alert_test_send",
    "api_token_create",
    "api_token_revoke",
    "deadletter_discard",
    "deadletter_replay",
    "perform",
    "queue_purge",
    "task_retry",
    "task_revoke",
    "task_send",
    "task_terminate",
    "tasks_bulk",
    "worker_control",
]
