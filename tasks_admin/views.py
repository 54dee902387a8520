from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers; no dependency is checked (that is /readyz)."""
    return JsonResponse({"status": "ok"})
