"""Template context every page gets: the signed-in user's role and what it allows.

Templates show a control only when ``console_may.<action>`` is true (action keys with dots
replaced by underscores, e.g. ``console_may.task_retry``). Hiding is a courtesy; services
enforce the same table (roles.ACTION_ROLES) on every request.
"""

from typing import Any

from django.http import HttpRequest

from tasks_admin.roles import ACTION_ROLES, may, role_of


def console_role(request: HttpRequest) -> dict[str, Any]:
    role = role_of(getattr(request, "user", None))
    return {
        "console_role": role,
        "console_may": {action.replace(".", "_"): may(role, action) for action in ACTION_ROLES},
    }
