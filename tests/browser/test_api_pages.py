"""The Tokens page and the API docs in a real browser: a token is created and shown once,
and Swagger UI runs from the app's own static files (nothing from another host)."""

import re
from urllib.parse import urlparse

import pytest

from tasks_admin.models import ApiToken
from tasks_admin.models.api import token_digest
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_token_then_read_the_api_docs_served_by_the_app(
    asgi_server,
    browser,
    django_user_model,
):
    django_user_model.objects.create_user("sre", password="a-long-test-password")
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    problems: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))

    page.goto(f"{asgi_server.url}/login/")
    page.fill("input[name=username]", "sre")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{asgi_server.url}/")

    page.goto(f"{asgi_server.url}/tokens/")
    page.fill("input[name=name]", "deploy script")
    page.click("text=Create token")
    shown = page.locator("#new-token code").inner_text()
    assert re.fullmatch(r"cc_[A-Za-z0-9_-]{40,}", shown)
    assert ApiToken.objects.get(digest=token_digest(shown)).name == "deploy script"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "tokens.png"), full_page=True)
    page.goto(f"{asgi_server.url}/tokens/")
    assert shown not in page.content()

    page.goto(f"{asgi_server.url}/api/v1/docs/")
    page.wait_for_selector("text=/api/v1/tasks/", timeout=15000)
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"), full_page=True)
    assert hosts == {urlparse(asgi_server.url).netloc}
    assert problems == []
