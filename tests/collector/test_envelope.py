import base64
import json
import pickle

import pytest

from tasks_admin.collector.buffer import RawMessage
from tasks_admin.collector.envelope import MalformedMessage, decode_message

RECEIVED_AT = 1_767_225_600.5


def _event(type_: str = "task-succeeded", **fields: object) -> dict:
    return {
        "hostname": "celery@worker-1",
        "utcoffset": -5,
        "pid": 4242,
        "clock": 7,
        "uuid": "9a2f7a3e-1c1b-4c5e-9f1a-2b8e7d6c5b4a",
        "timestamp": 1_767_225_599.123456,
        "type": type_,
        **fields,
    }


def _redis(body: bytes, content_type: str = "application/json") -> RawMessage:
    """kombu's Redis envelope, as ``Channel._put_fanout`` publishes it."""
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": content_type,
        "headers": {"hostname": "celery@worker-1"},
        "properties": {
            "delivery_mode": 1,
            "delivery_info": {"exchange": "celeryev", "routing_key": "task.multi"},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": "0f3f8c5e-7d0e-4f55-9a55-1c2b3d4e5f60",
        },
    }
    return RawMessage(json.dumps(envelope).encode(), "redis", RECEIVED_AT)


def _amqp(body: bytes, content_type: str = "application/json") -> RawMessage:
    return RawMessage(body, "amqp", RECEIVED_AT, content_type, "utf-8", ack_tag=1)


def test_single_redis_event_decodes_to_the_sent_dict_with_local_received():
    sent = _event(result="3", runtime=0.25)

    events, bad = decode_message(_redis(json.dumps(sent).encode()))

    assert events == [{**sent, "local_received": RECEIVED_AT}]
    assert bad == 0


def test_timestamps_are_not_localized_by_utcoffset():
    sent = _event(utcoffset=-5)

    events, _ = decode_message(_amqp(json.dumps(sent).encode()))

    assert events[0]["timestamp"] == sent["timestamp"]


def test_buffered_task_multi_message_yields_every_event_in_order():
    sent = [_event("task-received"), _event("task-started"), _event("task-succeeded")]

    events, bad = decode_message(_amqp(json.dumps(sent).encode()))

    assert [event["type"] for event in events] == [
        "task-received",
        "task-started",
        "task-succeeded",
    ]
    assert all(event["local_received"] == RECEIVED_AT for event in events)
    assert bad == 0


def test_malformed_json_raises_malformed_message():
    with pytest.raises(MalformedMessage, match="not JSON"):
        decode_message(_amqp(b'{"type": "task-started", "uuid": '))


def test_broken_redis_envelope_raises_malformed_message():
    with pytest.raises(MalformedMessage, match="envelope"):
        decode_message(RawMessage(b"not an envelope", "redis", RECEIVED_AT))


def test_pickle_content_type_is_refused_by_name_without_unpickling():
    body = pickle.dumps(_event())

    with pytest.raises(MalformedMessage, match="application/x-python-serialize"):
        decode_message(_redis(body, content_type="application/x-python-serialize"))


@pytest.mark.parametrize("content_type", ["application/x-yaml", "application/x-msgpack", None])
def test_non_json_content_types_are_refused(content_type):
    with pytest.raises(MalformedMessage, match="only application/json"):
        decode_message(_amqp(json.dumps(_event()).encode(), content_type=content_type))


def test_non_dict_items_and_items_without_str_type_are_skipped_and_counted():
    good = _event("task-started")
    body = json.dumps([good, 42, "task-failed", None, {"uuid": "x"}, {"type": 5}]).encode()

    events, bad = decode_message(_amqp(body))

    assert events == [{**good, "local_received": RECEIVED_AT}]
    assert bad == 5


def test_scalar_body_raises_malformed_message():
    with pytest.raises(MalformedMessage, match="not an object"):
        decode_message(_amqp(b'"task-started"'))


def test_non_utf8_bytes_in_a_task_name_cost_a_replacement_character_not_the_event():
    good = json.dumps(_event("task-started")).encode()
    bad_name = json.dumps(_event("task-received", name="tasks.XX")).encode()
    bad_name = bad_name.replace(b"XX", b"caf\xe9")
    body = b"[" + good + b"," + bad_name + b"]"

    events, bad = decode_message(_redis(body))

    assert [event["type"] for event in events] == ["task-started", "task-received"]
    assert events[1]["name"] == "tasks.caf\ufffd"
    assert bad == 0


def test_lone_surrogate_escape_is_replaced_so_postgresql_can_store_it():
    body = json.dumps(_event("task-failed", exception="ValueError('\ud800')")).encode()

    events, _ = decode_message(_amqp(body))

    assert events[0]["exception"] == "ValueError('?')"


def test_json_content_type_with_charset_parameter_is_accepted():
    events, _ = decode_message(
        _amqp(json.dumps(_event()).encode(), content_type="application/json; charset=utf-8")
    )

    assert len(events) == 1
