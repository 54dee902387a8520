"""The advisor: checks for Celery's production pitfalls, one module per family.

Each check is a function ``check(ctx: Context) -> list[Finding]`` (see ``base``); the
runner runs them all and records findings with first/last seen and resolved times.
Run by the collector (``AdvisorPoller``), the Advisor page and ``manage.py advise``.
"""
