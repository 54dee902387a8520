"""CONSOLE_REDACT_ARGS: values hidden in what is shown, never in what is stored."""

from tasks_admin.redaction import HIDDEN_REPR, redact_headers, redact_repr, redact_value

NAMES = frozenset({"password", "token"})


def test_json_values_are_redacted_at_any_depth_case_insensitively():
    value = {"user": "ada", "Password": "s3cret", "nested": [{"token": {"a": 1}}]}
    assert redact_value(value, NAMES) == {
        "user": "ada",
        "Password": "[redacted]",
        "nested": [{"token": "[redacted]"}],
    }
    assert value["Password"] == "s3cret"


def test_a_celery_repr_is_redacted_where_the_name_is_a_key_or_keyword():
    text = "(1, {'password': 'hunter2', 'x': {'token': 'é-t'}}, Login(token='abc'))"
    assert redact_repr(text, NAMES) == (
        "(1, {'password': '[redacted]', 'x': {'token': '[redacted]'}}, Login(token='[redacted]'))"
    )


def test_a_cut_repr_naming_a_secret_is_hidden_whole():
    assert redact_repr("{'password': 'hunter2', 'rows': [1, 2, 3, 4", NAMES) == HIDDEN_REPR


def test_reprs_without_the_names_are_left_alone():
    assert redact_repr("{'user': 'ada', 'rows': [1, 2", NAMES) == "{'user': 'ada', 'rows': [1, 2"
    assert redact_repr("{'password': 'x'}", frozenset()) == "{'password': 'x'}"


def test_the_argument_reprs_in_message_headers_are_redacted():
    headers = {"kwargsrepr": "{'token': 'abc'}", "argsrepr": "()", "id": "t-1"}
    assert redact_headers(headers, NAMES)["kwargsrepr"] == "{'token': '[redacted]'}"
