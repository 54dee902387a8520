"""Every action the console can take (HackSoft style: ``services.task_retry(...)``).

Import the package as a module, ``from tasks_admin import services``, so a view named
like a service cannot shadow it. Each service is keyword-only, takes an ``Actor`` and goes
through ``perform`` (role check + audit). One module per entity; re-export here.
"""

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
from tasks_admin.services.tokens import api_token_create, api_token_revoke

__all__ = [
    "ActionConflict",
    "ActionError",
    "ActionInvalid",
    "ActionNotFound",
    "ActionRefused",
    "ActionResult",
    "ActionUnavailable",
    "api_token_create",
    "api_token_revoke",
    "perform",
]
