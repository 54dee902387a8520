"""Serialization: workers that would unpickle whatever the broker hands them."""

from __future__ import annotations

from tasks_admin.advisor.base import CRITICAL, Context, Finding, inspected, setting

UNSAFE = {"pickle", "application/x-python-serialize", "yaml", "application/x-yaml"}


def accepts_pickle(ctx: Context) -> list[Finding]:
    findings = []
    for worker in ctx.online_workers():
        if not inspected(worker):
            continue
        accepted = setting(worker, "accept_content") or []
        accepted = [accepted] if isinstance(accepted, str) else list(accepted)
        unsafe = sorted({str(item) for item in accepted} & UNSAFE)
        if not unsafe:
            continue
        findings.append(
            Finding(
                check="accepts_pickle",
                subject=worker.hostname,
                severity=CRITICAL,
                title=f"{worker.hostname} accepts {', '.join(unsafe)} messages",
                evidence=f"inspect conf: accept_content = {accepted!r}.",
                why=(
                    "Unpickling runs arbitrary code: anyone who can write to the broker "
                    "(a leaked password, a shared Redis) can run commands on every worker."
                ),
                fix=(
                    "Set accept_content = ['json'] (and task_serializer / result_serializer "
                    "= 'json'), then restart the workers; pass plain data, not objects."
                ),
            )
        )
    return findings


CHECKS = [accepts_pickle]
