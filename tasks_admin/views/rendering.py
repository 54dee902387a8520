"""Full page or partial: the one rule every view follows."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def is_htmx(request: HttpRequest) -> bool:
    # htmx restoring history it no longer has cached wants the whole page back.
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def page_or_partial(
    request: HttpRequest, page: str, partial: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render ``page`` for a browser, ``partial`` (the part htmx swaps) for htmx."""
    response = render(request, partial if is_htmx(request) else page, context, status=status)
    # One URL, two bodies: caches (and the back button) must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response
