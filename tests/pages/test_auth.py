"""Signing in and out: every page needs a user, except the health check."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PAGES = ["/", "/workers/", "/workers/celery@w1/", "/queues/", "/failures/"]


def csrf_token_of(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


@pytest.fixture
def client():
    """Anonymous, unlike the signed-in client the other page tests share."""
    return Client()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ada", password="correct horse battery")


@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_visitor_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_an_anonymous_htmx_request_gets_no_data(client):
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 302
    assert 'id="dashboard-body"' not in response.content.decode()


def test_signing_in_with_the_form_and_a_real_password_reaches_the_dashboard(user):
    browser = Client(enforce_csrf_checks=True)
    form = browser.get("/login/?next=/")
    assert form.status_code == 200
    response = browser.post(
        "/login/",
        {
            "username": "ada",
            "password": "correct horse battery",
            "next": "/",
            "csrfmiddlewaretoken": csrf_token_of(form.content.decode()),
        },
    )
    assert response.status_code == 302 and response["Location"] == "/"
    dashboard = browser.get("/")
    assert dashboard.status_code == 200
    assert 'id="dashboard-body"' in dashboard.content.decode()
    assert "ada" in dashboard.content.decode()


def test_a_wrong_password_does_not_sign_in(user):
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_of(browser.get("/login/").content.decode())
    response = browser.post(
        "/login/", {"username": "ada", "password": "wrong", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert browser.get("/").status_code == 302


def test_signing_in_without_the_csrf_token_is_refused(user):
    browser = Client(enforce_csrf_checks=True)
    browser.get("/login/")
    response = browser.post("/login/", {"username": "ada", "password": "correct horse battery"})
    assert response.status_code == 403
    assert browser.get("/").status_code == 302


def test_the_health_check_answers_without_signing_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_signing_out_needs_a_post(client, user):
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_the_sign_out_button_posts_with_a_csrf_token(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    form = html.split('<form class="signout" method="post" action="/logout/">', 1)[1]
    assert 'name="csrfmiddlewaretoken"' in form.split("</form>", 1)[0]
