"""The read-only admin: signed-in staff can read the history, nobody can change it."""

import pytest
from django.contrib.auth.models import User

from tasks_admin.collector.writer import BatchWriter
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("ops", password="pw-for-tests-only")
    client.force_login(user)
    return client


def test_the_admin_asks_anonymous_users_to_sign_in(client):
    response = client.get("/admin/tasks_admin/taskrecord/", follow=True)
    assert response.redirect_chain[0][0].startswith("/login/?next=/admin/")


def test_task_list_shows_recorded_tasks_and_escapes_their_names(staff_client):
    events = factories.failed_task(name="<script>alert(1)</script>")
    BatchWriter(max_chars=65536).write(events)
    response = staff_client.get("/admin/tasks_admin/taskrecord/")
    assert response.status_code == 200
    body = response.content.decode()
    assert events[0]["uuid"] in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)</script>" not in body


def test_history_cannot_be_deleted_from_the_admin(staff_client):
    events = factories.succeeded_task()
    BatchWriter(max_chars=65536).write(events)
    url = f"/admin/tasks_admin/taskrecord/{events[0]['uuid']}/delete/"
    assert staff_client.post(url, {"post": "yes"}).status_code == 403


def test_healthz_answers_without_sign_in(client):
    assert client.get("/healthz").json() == {"status": "ok"}
