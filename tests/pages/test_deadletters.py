"""Dead letters pages and the retry/replay/discard forms: roles, audit, CSRF, escaping."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from kombu import Connection

from tasks_admin.models import AuditEntry, DeadLetter, TaskRecord
from tasks_admin.roles import GROUP_NAMES, Role
from tests import factories
from tests.integration.conftest import BROKERS
from tests.pages.markup import ESCAPED, HOSTILE, is_partial, text_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("actions_on_test_redis")]

HTMX = {"HX-Request": "true"}


def signed_in(role: Role | None) -> Client:
    user = User.objects.create_user(f"user-{role.label if role else 'none'}", password="x-1234567")
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=GROUP_NAMES[role])[0])
    client = Client()
    client.force_login(user)
    return client


def failed_task(task_id: str, **fields) -> TaskRecord:
    at = timezone.now() - dt.timedelta(minutes=5)
    fields.setdefault("state", "FAILURE")
    fields.setdefault("name", "demo.charge_card")
    return TaskRecord.objects.create(
        task_id=task_id, first_seen_at=at, last_event_at=at, updated_at=at, **fields
    )


@pytest.fixture
def broker_queue(settings):
    """Replays publish to the test broker (TEST_REDIS_URL); the queue is emptied after."""
    name = f"pages-{factories.new_task_id()[:8]}"
    yield name
    with Connection(BROKERS["redis"]) as conn:
        conn.default_channel.queue_purge(name)


def test_the_list_says_what_became_of_each_dead_letter(client):
    factories.dead_letter(name="demo.new_one")
    factories.dead_letter(name="demo.replayed_one", state="replayed", replayed_as="new-task-1")
    factories.dead_letter(name="demo.discarded_one", state="discarded", discarded_by="ada")

    body = client.get("/deadletters/").content.decode()

    assert "1 new, 1 replayed, 1 discarded" in text_of(body, "deadletters-body")
    assert 'href="/tasks/new-task-1/"' in body
    assert "discarded by ada" in body
    assert 'href="/deadletters/"' in body  # the nav link


def test_the_list_filters_by_task_exception_queue_and_age(client):
    old = timezone.now() - dt.timedelta(days=3)
    factories.dead_letter(
        name="demo.a", queue="q1", exception_type="KeyError", exception="KeyError('x')"
    )
    factories.dead_letter(name="demo.b", queue="q2", received_at=old)

    def names(query: str) -> set[str]:
        rows = DeadLetter.objects.values_list("name", flat=True)
        body = client.get(f"/deadletters/?{query}", headers=HTMX).content.decode()
        return {name for name in rows if f">{name}<" in body}

    assert names("name=demo.a") == {"demo.a"}
    assert names("exception=KeyError") == {"demo.a"}
    assert names("queue=q2") == {"demo.b"}
    assert names("age=24h") == {"demo.a"}
    assert names("") == {"demo.a", "demo.b"}


def test_a_bad_age_is_a_400_with_the_reason(client):
    response = client.get("/deadletters/?age=yesterday")
    assert response.status_code == 400
    assert "is not an age" in response.content.decode()


def test_the_detail_shows_the_original_arguments_escaped(client):
    letter = factories.dead_letter(
        name=HOSTILE,
        args=[{"note": HOSTILE, "nested": [[HOSTILE]]}],
        kwargs={HOSTILE: HOSTILE},
        exception=HOSTILE,
        traceback=HOSTILE,
        queue=HOSTILE,
    )

    body = client.get(f"/deadletters/{letter.pk}/").content.decode()

    assert HOSTILE not in body
    assert ESCAPED in body
    assert "&quot;note&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in body
    list_body = client.get("/deadletters/").content.decode()
    assert HOSTILE not in list_body


def test_the_detail_of_a_missing_dead_letter_is_404(client):
    assert client.get("/deadletters/999999/").status_code == 404


def test_secret_arguments_are_redacted_on_the_dead_letter_and_task_pages(client, settings):
    settings.CONSOLE_REDACT_ARGS = ["card_number"]
    task_id = factories.new_task_id()
    failed_task(task_id, kwargs="{'card_number': '4242424242424242', 'amount': 5}")
    letter = factories.dead_letter(
        task_id,
        kwargs={"card_number": "4242424242424242", "amount": 5},
        headers={"argsrepr": "()", "kwargsrepr": "{'card_number': '4242424242424242'}"},
    )

    detail = client.get(f"/deadletters/{letter.pk}/").content.decode()
    task_page = client.get(f"/tasks/{task_id}/").content.decode()

    for body in (detail, task_page):
        assert "4242424242424242" not in body
        assert "[redacted]" in body
    letter.refresh_from_db()
    assert letter.kwargs["card_number"] == "4242424242424242"


def test_a_viewer_sees_no_action_and_is_refused_every_one_each_refusal_audited():
    viewer = signed_in(None)
    task_id = factories.new_task_id()
    failed_task(task_id)
    letter = factories.dead_letter(task_id)
    pages = [f"/deadletters/{letter.pk}/", "/deadletters/", f"/tasks/{task_id}/"]
    for page in pages:
        body = viewer.get(page).content.decode()
        for button in (
            "Replay</button>",
            "Replay selected</button>",
            "Discard</button>",
            ">Retry<",
        ):
            assert button not in body

    posts = [
        ("/retry/", {"task_id": task_id}, "task.retry"),
        ("/deadletters/replay/", {"id": letter.pk}, "deadletter.replay"),
        ("/deadletters/discard/", {"id": letter.pk}, "deadletter.discard"),
    ]
    for url, data, action in posts:
        response = viewer.post(url, data)
        assert response.status_code == 403
        assert "needs the" in response.content.decode()
        htmx = viewer.post(url, data, headers=HTMX)
        assert (htmx.status_code, htmx["X-Console-Outcome"]) == (200, "forbidden")
        assert is_partial(htmx.content.decode())
        entries = AuditEntry.objects.filter(action=action, outcome="refused")
        assert entries.count() == 2
        assert entries.first().source == "page"
    letter.refresh_from_db()
    assert letter.state == "new"


def test_an_operator_may_replay_but_not_discard():
    operator = signed_in(Role.OPERATOR)
    letter = factories.dead_letter()

    body = operator.get(f"/deadletters/{letter.pk}/").content.decode()

    assert "Replay</button>" in body
    assert "Discard</button>" not in body
    assert operator.post("/deadletters/discard/", {"id": letter.pk}).status_code == 403


def test_a_form_post_without_a_csrf_token_is_rejected():
    admin = User.objects.create_superuser("root", password="x-1234567")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    letter = factories.dead_letter()

    for url, data in [
        ("/deadletters/discard/", {"id": letter.pk}),
        ("/deadletters/replay/", {"id": letter.pk}),
        ("/retry/", {"task_id": letter.task_id}),
    ]:
        assert client.post(url, data).status_code == 403
    letter.refresh_from_db()
    assert letter.state == "new"
    assert not AuditEntry.objects.exists()


def test_an_admin_discards_with_htmx_and_the_outcome_is_swapped_in():
    admin = signed_in(Role.ADMIN)
    letters = [factories.dead_letter(), factories.dead_letter()]

    response = admin.post(
        "/deadletters/discard/", {"id": [letter.pk for letter in letters]}, headers=HTMX
    )

    body = response.content.decode()
    assert is_partial(body)
    assert "Discarded 2 dead letters" in body
    assert set(DeadLetter.objects.values_list("state", "discarded_by")) == {
        ("discarded", "user-admin")
    }
    again = admin.post("/deadletters/discard/", {"id": letters[0].pk})
    assert again.status_code == 409
    assert "already discarded by user-admin" in again.content.decode()


def test_an_operator_replays_into_another_queue_without_javascript(broker_queue):
    operator = signed_in(Role.OPERATOR)
    letter = factories.dead_letter()

    response = operator.post(
        "/deadletters/replay/", {"id": letter.pk, "queue": broker_queue, "back": "/deadletters/"}
    )

    assert response.status_code == 200
    letter.refresh_from_db()
    assert (letter.state, letter.replayed_by, letter.replay_queue) == (
        "replayed",
        "user-operator",
        broker_queue,
    )
    body = response.content.decode()
    assert f'href="/tasks/{letter.replayed_as}/"' in body
    new = TaskRecord.objects.get(task_id=letter.replayed_as)
    assert (new.state, new.replay_of, new.name) == ("PENDING", letter.task_id, letter.name)
    with Connection(BROKERS["redis"]) as conn:
        message = conn.SimpleQueue(broker_queue, no_ack=True).get(timeout=2)
    assert message.headers["id"] == letter.replayed_as
    assert message.headers["replay_of"] == letter.task_id
    assert message.payload == [letter.args, letter.kwargs, {**letter.embed, "chord": None}]
    entry = AuditEntry.objects.get(action="deadletter.replay")
    assert (entry.outcome, entry.result["replayed"]) == (
        "succeeded",
        {str(letter.pk): letter.replayed_as},
    )


def test_the_retry_button_shows_only_for_a_retryable_task():
    operator = signed_in(Role.OPERATOR)
    failed, done = factories.new_task_id(), factories.new_task_id()
    failed_task(failed)
    failed_task(done, state="SUCCESS")

    assert ">Retry</button>" in operator.get(f"/tasks/{failed}/").content.decode()
    assert ">Retry</button>" not in operator.get(f"/tasks/{done}/").content.decode()
    refused = operator.post("/retry/", {"task_id": done}, headers=HTMX)
    assert refused["X-Console-Outcome"] == "conflict"
    assert "only tasks that ended FAILURE" in refused.content.decode()
