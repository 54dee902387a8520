"""Run the advisor's checks on demand (the Advisor page's button, ``manage.py advise``)."""

from __future__ import annotations

from tasks_admin.advisor.runner import advise
from tasks_admin.roles import Actor
from tasks_admin.services.base import ActionResult, perform


def advisor_run(*, actor: Actor) -> ActionResult:
    def run() -> ActionResult:
        advisor_run_row, outcome = advise(source=actor.source)
        detail = (
            f"Checks ran: {advisor_run_row.open_findings} open finding(s), "
            f"{outcome.opened} new, {outcome.resolved} resolved"
        )
        if outcome.errors:
            detail += f"; could not run: {', '.join(sorted(outcome.errors))}"
        return ActionResult(
            detail + ".",
            {
                "open": advisor_run_row.open_findings,
                "opened": outcome.opened,
                "resolved": outcome.resolved,
                "errors": outcome.errors,
            },
        )

    return perform(actor, "advisor.run", targets=["advisor"], run=run)
