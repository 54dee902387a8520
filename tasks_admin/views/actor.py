"""The Actor a page request acts as: its user, role and address, for services to check."""

from django.http import HttpRequest

from tasks_admin.roles import Actor, role_of


def page_actor(request: HttpRequest) -> Actor:
    return Actor(
        user=request.user,
        role=role_of(request.user),
        source="page",
        address=str(request.META.get("REMOTE_ADDR", "")),
    )
