"""Every API error is {"error": code, "detail": text}; the services' ActionErrors map by
their own code and status, so phase 2's action endpoints need no error handling of their own."""

import pytest
from django.http import Http404
from rest_framework import exceptions

from tasks_admin import services
from tasks_admin.api.errors import exception_handler


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (services.ActionInvalid("bad signal"), 400, "invalid"),
        (services.ActionRefused("needs admin"), 403, "forbidden"),
        (services.ActionNotFound("no such task"), 404, "not_found"),
        (services.ActionConflict("task is running"), 409, "conflict"),
        (services.ActionUnavailable("broker down"), 503, "unavailable"),
        (services.ActionError("it broke"), 500, "action_failed"),
    ],
)
def test_action_errors_become_their_code_and_status(error, status, code):
    response = exception_handler(error, {})
    assert response is not None
    assert (response.status_code, response.data) == (
        status,
        {"error": code, "detail": error.detail},
    )


def test_validation_errors_are_flattened_into_one_detail():
    error = exceptions.ValidationError({"state": ["Unknown state."], "from": ["Not a time."]})
    response = exception_handler(error, {})
    assert response.status_code == 400
    assert response.data == {
        "error": "invalid",
        "detail": "state: Unknown state.; from: Not a time.",
    }


def test_django_404_and_throttling_keep_the_shape():
    assert exception_handler(Http404("gone"), {}).data == {"error": "not_found", "detail": "gone"}
    throttled = exception_handler(exceptions.Throttled(wait=12.2), {})
    assert throttled.status_code == 429 and throttled["Retry-After"] == "13"
    assert throttled.data["error"] == "throttled"


def test_an_unexpected_exception_is_left_to_djangos_500_handler():
    assert exception_handler(RuntimeError("bug"), {}) is None
