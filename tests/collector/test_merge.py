"""The merge as a pure function: Celery's rules, whatever order events arrive in."""

import itertools
import random

from celery import states

from tasks_admin.collector import merge
from tasks_admin.collector.normalize import normalize
from tests import factories


def norm(events):
    return [normalize(e, max_chars=65536) for e in events]


def folded(events, task_id=None):
    events = list(events)
    task_id = task_id or events[0]["uuid"]
    return merge.fold(merge.new_row(task_id), events)


def comparable(row):
    return {**row, "event_keys": sorted(row["event_keys"])}


def test_every_permutation_of_a_retried_task_with_a_duplicate_gives_one_row():
    events = norm(factories.retried_then_succeeded_task())
    events.append(dict(events[3]))  # the task-retried event, delivered twice
    expected = comparable(folded(events))
    for order in itertools.permutations(events):
        assert comparable(folded(order)) == expected
    assert expected["state"] == states.SUCCESS
    assert expected["retries"] == 1
    assert len(expected["event_keys"]) == 6


def test_folding_in_two_halves_in_any_order_matches_folding_at_once():
    events = norm(factories.retried_then_succeeded_task())
    expected = comparable(folded(events))
    rng = random.Random(7)
    for _ in range(200):
        shuffled = events[:]
        rng.shuffle(shuffled)
        cut = rng.randrange(1, len(shuffled))
        row = folded(shuffled[:cut], events[0]["uuid"])
        if merge.needs_refold(row, shuffled[cut:]):
            row = folded(shuffled)  # what the writer does: refold from the whole log
        else:
            row = merge.fold(row, shuffled[cut:])
        assert comparable(row) == expected


def test_late_started_event_does_not_regress_success():
    _sent, received, started, succeeded = norm(factories.succeeded_task())
    row = folded([received, succeeded])
    row = folded([received, succeeded, started])
    assert row["state"] == states.SUCCESS
    assert row["started_at"] is not None
    assert row["runtime"] == 0.25


def test_replaying_the_same_events_changes_nothing():
    events = norm(factories.failed_task())
    row = folded(events)
    again = merge.fold({**row, "event_keys": list(row["event_keys"])}, events)
    assert comparable(again) == comparable(row)


def test_a_retried_task_waiting_for_its_countdown_shows_retry():
    events = norm(factories.retried_then_succeeded_task())[:4]
    row = folded(events)
    assert row["state"] == states.RETRY
    assert row["exception_type"] == "ConnectionError"
    assert row["worker"] == "celery@worker-1"


def test_received_keeps_its_first_time_and_started_its_latest():
    events = norm(factories.retried_then_succeeded_task())
    row = folded(events)
    assert row["received_at"] == merge.utc(events[0]["timestamp"])
    assert row["started_at"] == merge.utc(events[4]["timestamp"])
    assert row["first_seen_at"] == merge.utc(events[0]["timestamp"])
    assert row["last_event_at"] == merge.utc(events[5]["timestamp"])


def test_sent_event_brings_routing_and_failure_brings_exception_type():
    events = norm(factories.succeeded_task(name="demo.add"))
    row = folded(events)
    assert (row["queue"], row["routing_key"], row["name"]) == ("default", "default", "demo.add")
    failed = folded(norm(factories.failed_task()))
    assert failed["state"] == states.FAILURE
    assert failed["exception_type"] == "ValueError"
    assert "ValueError: bad input" in failed["traceback"]


def test_rejected_without_requeue_is_rejected_and_with_requeue_is_not():
    received, started, _ = norm(factories.failed_task())
    rejected = factories.event(
        "task-rejected", received["uuid"], at=started["timestamp"] + 1, requeue=False
    )
    assert folded([received, started, *norm([rejected])])["state"] == states.REJECTED
    requeued = factories.event(
        "task-rejected", received["uuid"], at=started["timestamp"] + 1, requeue=True
    )
    assert folded([received, started, *norm([requeued])])["state"] == states.STARTED


def test_lost_applies_to_a_started_task_and_a_later_success_overrides_it():
    received, started, _ = norm(factories.failed_task())
    lost = norm(
        [
            {
                "type": "task-lost",
                "uuid": received["uuid"],
                "clock": 0,
                "timestamp": started["timestamp"] + 10,
                "hostname": "celery@worker-1",
                "source": "collector",
            }
        ]
    )[0]
    assert folded([received, started, lost])["state"] == merge.LOST
    success = norm(
        [
            factories.event(
                "task-succeeded",
                received["uuid"],
                at=started["timestamp"] + 20,
                result="1",
                runtime=1.0,
            )
        ]
    )
    assert folded([received, started, lost, *success])["state"] == states.SUCCESS


def test_backend_reconciled_success_is_marked_and_a_real_event_clears_the_mark():
    received, started, _ = norm(factories.failed_task())
    backend = norm(
        [
            {
                "type": "task-succeeded",
                "uuid": received["uuid"],
                "clock": 0,
                "timestamp": started["timestamp"] + 5,
                "hostname": "celery@worker-1",
                "result": "42",
                "source": "backend",
            }
        ]
    )[0]
    row = folded([received, started, backend])
    assert (row["state"], row["reconciled"], row["result"]) == (states.SUCCESS, True, "42")


def test_custom_task_events_go_to_the_timeline_without_changing_state():
    received, started, _ = norm(factories.failed_task())
    progress = norm(
        [
            factories.event(
                "task-progress", received["uuid"], at=started["timestamp"] + 1, percent=50
            )
        ]
    )[0]
    row = folded([received, started, progress])
    assert row["state"] == states.STARTED
    assert progress["_key"] in row["event_keys"]
