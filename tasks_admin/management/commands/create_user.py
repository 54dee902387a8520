"""Create a console user holding one role (viewer, operator or admin)."""

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tasks_admin.roles import GROUP_NAMES, Role


class Command(BaseCommand):
    help = (
        "Create a console user with a role: viewer (reads), operator (also retries, revokes, "
        "terminates, replays) or admin (also purges, discards, bulk actions, worker control). "
        "Prints a generated password when none is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, help="viewer, operator or admin")
        parser.add_argument("--password", help="default: a generated one, printed once")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"].strip()
        if not username:
            raise CommandError("--username must not be empty")
        try:
            role = Role.parse(options["role"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        password: str | None = options["password"]
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(15)
        elif not password:
            raise CommandError("--password must not be empty (leave it out to generate one)")
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} already exists")
        with transaction.atomic():
            group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
            user = user_model.objects.create_user(username=username, password=password)
            user.groups.add(group)
        shown = f"  password {password}" if generated else ""
        self.stdout.write(f"created {role.label} {username}{shown}")
