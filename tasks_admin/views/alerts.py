from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from tasks_admin import services
from tasks_admin.models import AlertRule
from tasks_admin.selectors import advisor as advisor_selectors
from tasks_admin.views.actor import page_actor
from tasks_admin.views.rendering import page_or_partial

NEW_RULE = {
    "kind": AlertRule.Kind.QUEUE_DEPTH,
    "threshold": "0",
    "window_seconds": "300",
    "cooldown_seconds": "1800",
    "enabled": "on",
}


def _values(rule: AlertRule) -> dict[str, str]:
    return {
        "name": rule.name,
        "kind": rule.kind,
        "target": rule.target,
        "threshold": f"{rule.threshold:g}",
        "window_seconds": str(rule.window_seconds),
        "cooldown_seconds": str(rule.cooldown_seconds),
        "webhook_url": rule.webhook_url,
        "email_to": rule.email_to,
        "enabled": "on" if rule.enabled else "",
    }


def _render(
    request: HttpRequest,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    editing: int | None = None,
) -> HttpResponse:
    rows = [
        (rule, form if form is not None and editing == rule.pk else _values(rule))
        for rule in advisor_selectors.alert_rules()
    ]
    return page_or_partial(
        request,
        "tasks_admin/alerts.html",
        "tasks_admin/partials/alerts_body.html",
        {
            "rules": rows,
            "firing": advisor_selectors.firing_states(),
            "notices": advisor_selectors.alert_notices(),
            "kinds": AlertRule.Kind.choices,
            "new_values": form if form is not None and editing is None else NEW_RULE,
            "new_open": form is not None and editing is None,
            "editing": editing,
        },
        status=status,
    )


@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


def _done(request: HttpRequest, result: services.ActionResult) -> HttpResponse:
    messages.success(request, result.detail)
    return redirect("tasks_admin:alerts")


def _failed(
    request: HttpRequest, error: services.ActionError, rule_id: int | None = None
) -> HttpResponse:
    messages.error(request, error.detail)
    form = {key: str(value) for key, value in request.POST.items() if key != "csrfmiddlewaretoken"}
    return _render(request, status=error.status, form=form, editing=rule_id)


@require_POST
def alert_rule_create(request: HttpRequest) -> HttpResponse:
    try:
        fields = services.RuleFields.clean(request.POST)
        result = services.alert_rule_create(actor=page_actor(request), fields=fields)
    except services.ActionError as error:
        return _failed(request, error)
    return _done(request, result)


@require_POST
def alert_rule_update(request: HttpRequest, rule_id: int) -> HttpResponse:
    try:
        fields = services.RuleFields.clean(request.POST)
        result = services.alert_rule_update(
            actor=page_actor(request), rule_id=rule_id, fields=fields
        )
    except services.ActionError as error:
        return _failed(request, error, rule_id)
    return _done(request, result)


@require_POST
def alert_rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    try:
        result = services.alert_rule_delete(actor=page_actor(request), rule_id=rule_id)
    except services.ActionError as error:
        return _failed(request, error)
    return _done(request, result)


@require_POST
def alert_rule_test(request: HttpRequest, rule_id: int) -> HttpResponse:
    try:
        result = services.alert_test_send(actor=page_actor(request), rule_id=rule_id)
    except services.ActionError as error:
        return _failed(request, error)
    return _done(request, result)
