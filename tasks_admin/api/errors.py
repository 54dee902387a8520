"""Every API error is ``{"error": code, "detail": text}`` with the right status.

DRF's own exceptions, Django's Http404, and the services' ``ActionError`` (code, status,
detail) all end here, so an action endpoint only calls its service and lets errors rise.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseRedirectBase
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from tasks_admin.services import ActionError

logger = logging.getLogger(__name__)

CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The action cannot apply now."
    default_code = "conflict"


class HttpResponsePermanentRedirect(HttpResponseRedirectBase):
    status_code = 308


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    """A validation error's nested messages as "field: message" lines."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            lines += _flatten(value, f"{prefix}.{name}" if prefix and name else name or prefix)
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ActionError):
        set_rollback()
        return Response(error_body(exc.code, exc.detail), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handler logs it
    code = next(
        (code for cls, code in CODES.items() if isinstance(exc, cls)),
        exc.default_code if isinstance(exc.default_code, str) else "error",
    )
    detail = "; ".join(_flatten(exc.detail)) if not isinstance(exc.detail, str) else exc.detail
    headers = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(math.ceil(exc.wait))
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    set_rollback()
    return Response(error_body(code, str(detail)), status=exc.status_code, headers=headers)


@csrf_exempt  # a POST to an unknown path gets the JSON 404, not the CSRF page
@login_not_required
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Unknown paths under /api/: JSON, not the HTML 404 page. A /api/v1 path missing its
    trailing slash is redirected with 308, which keeps the method and body."""
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.url_name != "not-found":
            target = request.path + "/"
            if request.META.get("QUERY_STRING"):
                target += "?" + request.META["QUERY_STRING"]
            return HttpResponsePermanentRedirect(target)
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
