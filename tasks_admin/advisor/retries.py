"""Retries that cannot help: the same programming error on every attempt until give-up."""

from __future__ import annotations

import re
from collections import defaultdict

from tasks_admin.advisor.base import WARNING, Context, Finding, failed_since
from tasks_admin.models import TaskEvent, TaskRecord

# Errors a retry does not fix: the same input gives the same exception every time.
DETERMINISTIC = {
    "ValueError",
    "TypeError",
    "KeyError",
    "IndexError",
    "AttributeError",
    "NameError",
    "ZeroDivisionError",
    "AssertionError",
    "NotImplementedError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "JSONDecodeError",
    "ValidationError",
    "DoesNotExist",
    "ImportError",
    "ModuleNotFoundError",
}


CALLS = re.compile(r"([A-Za-z_][\w.]*)\(")


def exception_type(text: str) -> str:
    """``ValueError('x')`` → ``ValueError``; ``mod.Error: x`` → ``Error``.

    task-retried events carry ``Retry(Retry(...), ValueError('x'), 0)``: the error that
    caused the retry is the first call in it that is not Retry.
    """
    text = (text or "").strip()
    if text.startswith("Retry("):
        for name in CALLS.findall(text):
            if name.rsplit(".", 1)[-1] != "Retry":
                return name.rsplit(".", 1)[-1]
        return "Retry"
    head = text.split("(", 1)[0].split(":", 1)[0].strip()
    return head.rsplit(".", 1)[-1]


def hopeless_retries(ctx: Context) -> list[Finding]:
    gave_up = dict(
        TaskRecord.objects.filter(state="FAILURE", retries__gte=1, **failed_since(ctx))
        .order_by("-failed_at")
        .values_list("task_id", "exception")[:2000]
    )
    if not gave_up:
        return []
    attempts: dict[str, list[str]] = defaultdict(list)
    retried = TaskEvent.objects.filter(
        task_id__in=list(gave_up),
        type="task-retried",
        recorded_at__gte=ctx.since - ctx.window,
    ).values_list("task_id", "fields")
    for task_id, fields in retried:
        attempts[task_id].append(exception_type(str((fields or {}).get("exception", ""))))
    per_name: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    names = dict(
        TaskRecord.objects.filter(task_id__in=list(attempts)).values_list("task_id", "name")
    )
    for task_id, kinds in attempts.items():
        final = exception_type(gave_up[task_id])
        if final not in DETERMINISTIC or any(kind != final for kind in kinds):
            continue
        per_name[(names.get(task_id) or "?", final)].append((task_id, len(kinds) + 1))
    findings = []
    for (name, kind), tasks in sorted(per_name.items()):
        task_id, tries = tasks[0]
        findings.append(
            Finding(
                check="hopeless_retries",
                subject=f"{name}: {kind}",
                severity=WARNING,
                title=f"{name} retries {kind} until it gives up",
                evidence=(
                    f"{len(tasks)} task(s) failed for good after retrying, with {kind} on "
                    f"every attempt; e.g. [{task_id}]: {tries} attempts, last "
                    f"{gave_up[task_id][:200]}"
                ),
                why=(
                    f"{kind} comes from the code or its input, not from a flaky dependency: "
                    "every retry fails the same way, delays the final failure and wastes "
                    "worker time (and with backoff, hours)."
                ),
                fix=(
                    "Retry only transient errors (autoretry_for=(ConnectionError, "
                    "TimeoutError), not Exception); validate input before queuing and fail "
                    "fast on bad data."
                ),
            )
        )
    return findings


CHECKS = [hopeless_retries]
