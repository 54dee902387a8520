"""The console's models, one module per capability; import them from here.

Migrations refer to ``tasks_admin.models.<name>`` (LogJSONField), so everything a
migration names must stay importable from this package.
"""

from tasks_admin.models.actions import BulkRun
from tasks_admin.models.advisor import (
    SEVERITY_RANK,
    AdvisorFinding,
    AdvisorRun,
    AlertNotice,
    AlertRule,
    AlertState,
    Severity,
    WorkerMemorySample,
    WorkerVanished,
)
from tasks_admin.models.api import ApiToken
from tasks_admin.models.audit import AuditEntry
from tasks_admin.models.deadletters import DeadLetter
from tasks_admin.models.history import (
    CollectorStatus,
    LogJSONField,
    QueueRecord,
    QueueSample,
    TaskEvent,
    TaskMinuteRollup,
    TaskNameTotal,
    TaskRecord,
    WorkerRecord,
)

__all__ = [
    "SEVERITY_RANK",
    "AdvisorFinding",
    "AdvisorRun",
    "AlertNotice",
    "AlertRule",
    "AlertState",
    "ApiToken",
    "AuditEntry",
    "BulkRun",
    "CollectorStatus",
    "DeadLetter",
    "LogJSONField",
    "QueueRecord",
    "QueueSample",
    "Severity",
    "TaskEvent",
    "TaskMinuteRollup",
    "TaskNameTotal",
    "TaskRecord",
    "WorkerMemorySample",
    "WorkerRecord",
    "WorkerVanished",
]
