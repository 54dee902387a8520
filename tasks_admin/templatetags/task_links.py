"""Links built from task-derived values, which may hold anything (a ``/`` included)."""

from django import template
from django.urls import NoReverseMatch, reverse

from tasks_admin.broadcast import dom_id

register = template.Library()


def _reverse(name: str, **kwargs: str) -> str:
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        # A value the URL pattern cannot carry (a "/"): show it without a link.
        return ""


@register.filter
def task_url(task_id: str) -> str:
    """The task page of ``task_id``, or "" when no URL can carry it."""
    return _reverse("tasks_admin:task", task_id=task_id) if task_id else ""


@register.filter
def worker_url(hostname: str) -> str:
    """The worker page of ``hostname``, or "" when no URL can carry it."""
    return _reverse("tasks_admin:worker", hostname=hostname) if hostname else ""


@register.filter
def row_id(task_id: str) -> str:
    """The element id of ``task_id``'s row in the task list: live pushes swap rows by it."""
    return dom_id("task", task_id)
