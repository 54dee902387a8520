"""The audit page: newest first, filters by user, action, outcome, source and time,
keyset pages, read-only, escaped."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from tasks_admin.models import AuditEntry
from tasks_admin.selectors import audit as audit_selectors
from tests.pages.markup import ESCAPED, HOSTILE, is_partial

pytestmark = pytest.mark.django_db


def entry(
    *,
    ago: dt.timedelta = dt.timedelta(minutes=1),
    username="ann",
    action="task.revoke",
    outcome="succeeded",
    source="page",
    detail="",
    targets=("t-1",),
) -> AuditEntry:
    return AuditEntry.objects.create(
        created_at=timezone.now() - ago,
        username=username,
        role="admin",
        source=source,
        address="10.0.0.1",
        action=action,
        targets=list(targets),
        outcome=outcome,
        detail=detail or f"{action} by {username}",
    )


def details(body: str) -> list[str]:
    return re.findall(r"<td>([^<]* by [^<]*)</td>", body)


def test_audit_page_lists_entries_newest_first_as_a_page_and_a_partial(client):
    entry(ago=dt.timedelta(hours=2), detail="older")
    entry(ago=dt.timedelta(minutes=5), detail="newer")

    page = client.get("/audit/")
    partial = client.get("/audit/", headers={"HX-Request": "true"})

    body = page.content.decode()
    assert page.status_code == 200 and not is_partial(body)
    assert body.index("<td>newer</td>") < body.index("<td>older</td>")
    assert is_partial(partial.content.decode()) and "newer" in partial.content.decode()
    assert 'aria-current="page">Audit</a>' in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=bob", ["task.revoke by bob"]),
        ("action=queue.purge", ["queue.purge by ann"]),
        ("outcome=refused", ["worker.control by cid"]),
        ("source=api", ["tasks.bulk by dan"]),
        ("from=3h&to=90m", ["task.terminate by eve"]),
        ("user=ann&action=queue.purge&outcome=succeeded", ["queue.purge by ann"]),
        ("user=nobody", []),
    ],
)
def test_audit_page_filters(client, query, expected):
    entry(username="bob", ago=dt.timedelta(minutes=1))
    entry(action="queue.purge", ago=dt.timedelta(minutes=2))
    entry(username="cid", action="worker.control", outcome="refused", ago=dt.timedelta(minutes=3))
    entry(username="dan", action="tasks.bulk", source="api", ago=dt.timedelta(minutes=4))
    entry(username="eve", action="task.terminate", ago=dt.timedelta(hours=2))

    body = client.get(f"/audit/?{query}").content.decode()

    assert details(body) == expected


def test_audit_page_walks_keyset_pages_without_gaps_or_repeats(client, monkeypatch):
    monkeypatch.setattr(audit_selectors, "PAGE_SIZE", 3)
    same_moment = timezone.now() - dt.timedelta(minutes=1)
    for i in range(7):
        AuditEntry.objects.create(
            created_at=same_moment if i < 4 else same_moment - dt.timedelta(seconds=i),
            username=f"u{i}",
            source="page",
            action="task.revoke",
            outcome="succeeded",
            detail=f"task.revoke by u{i}",
        )

    seen: list[str] = []
    url = "/audit/"
    while url:
        body = client.get(url).content.decode()
        seen += details(body)
        match = re.search(r'<a href="([^"]+)" hx-get="[^"]+"[^>]*>Older entries', body)
        url = match[1].replace("&amp;", "&") if match else ""

    assert sorted(seen) == sorted(f"task.revoke by u{i}" for i in range(7))
    assert len(seen) == len(set(seen)) == 7


def test_bad_filters_are_a_400_with_the_reason(client):
    response = client.get("/audit/?outcome=maybe&from=yesterday-ish&cursor=nope")

    body = response.content.decode()
    assert response.status_code == 400
    assert "Unknown outcome" in body and "is not a time" in body and "not valid" in body


def test_audit_page_is_read_only(client):
    entry()
    assert client.post("/audit/").status_code == 405
    assert client.delete("/audit/").status_code == 405
    assert (
        "<form"
        not in client.get("/audit/").content.decode().split("<main")[1].split("</form>", 1)[1]
    )


def test_audit_entries_are_escaped(client):
    entry(username=HOSTILE, detail=HOSTILE, targets=[HOSTILE])

    body = client.get("/audit/").content.decode()

    assert HOSTILE not in body
    assert ESCAPED in body
