"""The audit page: every action attempt, newest first, filtered, read-only."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from tasks_admin.models import AuditEntry
from tasks_admin.roles import ACTION_ROLES
from tasks_admin.selectors import audit as audit_selectors
from tasks_admin.selectors.audit import AuditCursor, AuditFilters
from tasks_admin.views.filtering import TimeRangeForm
from tasks_admin.views.rendering import page_or_partial

SOURCES = ("page", "api", "command", "system")


class AuditForm(TimeRangeForm):
    user = forms.CharField(required=False, max_length=150)
    action = forms.ChoiceField(
        required=False,
        choices=[("", "any")] + [(a, a) for a in ACTION_ROLES],
        error_messages={"invalid_choice": "Unknown action “%(value)s”."},
    )
    outcome = forms.ChoiceField(
        required=False,
        choices=[("", "any"), *AuditEntry.Outcome.choices],
        error_messages={"invalid_choice": "Unknown outcome “%(value)s”."},
    )
    source = forms.ChoiceField(
        required=False,
        choices=[("", "any")] + [(s, s) for s in SOURCES],
        error_messages={"invalid_choice": "Unknown source “%(value)s”."},
    )
    cursor = forms.CharField(required=False, max_length=100)

    def clean_cursor(self) -> AuditCursor | None:
        text = self.cleaned_data.get("cursor") or ""
        if not text:
            return None
        try:
            return AuditCursor.decode(text)
        except ValueError:
            raise forms.ValidationError("This link's position in the log is not valid.") from None

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            username=data["user"].strip(),
            action=data["action"],
            outcome=data["outcome"],
            source=data["source"],
            since=data["from"],
            until=data["to"],
        )


@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditForm(request.GET, now=timezone.now())
    valid = form.is_valid()
    page = None
    next_url = ""
    if valid:
        page = audit_selectors.audit_page(form.filters(), after=form.cleaned_data["cursor"])
        if page.next_cursor is not None:
            query = request.GET.copy()
            query["cursor"] = page.next_cursor.encode()
            pairs = [(k, v) for k, values in query.lists() for v in values if v != ""]
            next_url = f"{reverse('tasks_admin:audit')}?{urlencode(pairs)}"
    context = {
        "page": page,
        "errors": form.error_messages(),
        "values": {key: request.GET.get(key, "") for key in form.fields},
        "actions": list(ACTION_ROLES),
        "outcomes": [value for value, _ in AuditEntry.Outcome.choices],
        "sources": SOURCES,
        "usernames": audit_selectors.audit_usernames(),
        "next_url": next_url,
        "clear_url": reverse("tasks_admin:audit"),
    }
    return page_or_partial(
        request,
        "tasks_admin/audit.html",
        "tasks_admin/partials/audit_rows.html",
        context,
        status=200 if valid else 400,
    )
