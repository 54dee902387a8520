"""Create, or reset the password of, the user the demo signs in with."""

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create (or reset) a demo superuser with a fresh random password and print both."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        password = secrets.token_urlsafe(12)
        user_model = get_user_model()
        # A superuser holds every role, so the demo can show every action.
        user, created = user_model.objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        user.set_password(password)
        user.save()
        verb = "created" if created else "reset"
        self.stdout.write(f"demo user {verb}: username {username}  password {password}")
