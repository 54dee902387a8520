from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers; no dependency is checked (that is /readyz)."""
    return JsonResponse({"status": "ok"})
