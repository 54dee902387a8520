"""The Tokens page: the signed-in user's API tokens; create one (shown once), revoke one."""

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from tasks_admin import services
from tasks_admin.models import ApiToken
from tasks_admin.roles import Actor, Role, role_of
from tasks_admin.services.tokens import MAX_EXPIRES_DAYS


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=[(r.label, r.label) for r in Role])
    expires_days = forms.IntegerField(required=False, min_value=1, max_value=MAX_EXPIRES_DAYS)


def _actor(request: HttpRequest) -> Actor:
    return Actor(
        user=request.user,
        role=role_of(request.user),
        source="page",
        address=str(request.META.get("REMOTE_ADDR", "")),
    )


def _render(request: HttpRequest, form: TokenForm, status: int = 200, **extra: Any) -> HttpResponse:
    role = role_of(request.user)
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user_id=int(request.user.pk or 0)).order_by(
            "-created_at", "-id"
        ),
        "roles": [r.label for r in Role if role is not None and r <= role],
        **extra,
    }
    return render(request, "tasks_admin/tokens.html", context, status=status)


@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    role = role_of(request.user)
    if request.method == "GET":
        initial = {"role": role.label if role else "viewer"}
        return _render(request, TokenForm(initial=initial))
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _render(request, form, status=400)
    try:
        token, raw = services.api_token_create(
            actor=_actor(request),
            name=form.cleaned_data["name"],
            role=Role.parse(form.cleaned_data["role"]),
            expires_days=form.cleaned_data["expires_days"],
        )
    except services.ActionError as error:
        return _render(request, form, status=error.status, error=error.detail)
    # Rendered, not redirected: the secret exists only in this response.
    response = _render(request, TokenForm(initial={"role": token.role}), new_token=raw)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        services.api_token_revoke(actor=_actor(request), token_id=token_id)
    except services.ActionError as error:
        return _render(request, TokenForm(), status=error.status, error=error.detail)
    return redirect("tasks_admin:tokens")
