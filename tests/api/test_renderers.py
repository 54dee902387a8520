"""The API's JSON renderer writes what DRF's JSONRenderer writes."""

import datetime as dt
import decimal
import json
import uuid

import pytest
from rest_framework.renderers import JSONRenderer as DrfJSONRenderer

from tasks_admin.api.renderers import JSONRenderer

BODIES = [
    {"results": [], "next": None, "total": 0, "total_capped": False},
    {
        "text": 'é ü 中文 \U0001f600 \u2028 \u2029 \x00 \x1f \x7f \t\n\r\b\f "quoted" \\ </script>',
        "numbers": [0, -1, 2**63 - 1, 0.1, 1.5, -2.25, 0.0001, 123456.789, True, False],
        "when": dt.datetime(2026, 1, 31, 14, 0, 0, 123456, tzinfo=dt.UTC),
        "naive": dt.datetime(2026, 1, 31, 14, 0),
        "date": dt.date(2026, 1, 31),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "money": decimal.Decimal("1.50"),
        "nested": {"a": [{"b": None}], "c": ("tuple", 1)},
    },
    {1: "an int key"},
    {"big": 2**70},
]


@pytest.mark.parametrize("body", BODIES)
def test_it_writes_the_bytes_drfs_renderer_writes(body):
    assert JSONRenderer().render(body) == DrfJSONRenderer().render(body)


def test_floats_in_exponent_form_have_the_same_values():
    body = {"runtime": [1e-7, 5e-05, 1e16, 1.5e300]}
    assert json.loads(JSONRenderer().render(body)) == json.loads(DrfJSONRenderer().render(body))


def test_indented_output_is_left_to_drf():
    body = {"a": [1, 2]}
    rendered = JSONRenderer().render(body, "application/json; indent=4")
    assert rendered == DrfJSONRenderer().render(body, "application/json; indent=4")
    assert b"\n    " in rendered


def test_the_api_answers_through_it(api):
    response = api.get("/api/v1/tasks/", state="FAILURE")
    assert response.status_code == 200
    assert type(response.accepted_renderer) is JSONRenderer
    assert response.content == DrfJSONRenderer().render(response.data)
