"""python manage.py create_token --user NAME [--role ROLE] [--expires-days N]: prints a token."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks_admin import services
from tasks_admin.roles import Actor, Role, role_of


class Command(BaseCommand):
    help = "Create an API token for a user and print it (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="The username the token acts as.")
        parser.add_argument(
            "--role", help="viewer, operator or admin; at most the user's (default: the user's)."
        )
        parser.add_argument(
            "--expires-days", type=int, help="Days until it expires (default: never)."
        )
        parser.add_argument("--name", default="", help="A label (default: 'create_token').")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        user_role = role_of(user)
        if user_role is None:
            raise CommandError(f"User {user.username!r} is inactive.")
        try:
            role = Role.parse(options["role"]) if options["role"] else user_role
        except ValueError as error:
            raise CommandError(str(error)) from None
        actor = Actor(user=user, role=user_role, source="command")
        try:
            _, raw = services.api_token_create(
                actor=actor,
                name=options["name"] or "create_token",
                role=role,
                expires_days=options["expires_days"],
            )
        except services.ActionError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(raw)
