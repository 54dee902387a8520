"""Worker control: pool size, autoscale, consumers, rate and time limits, restart, shutdown.

Each command goes to one worker (``destination=[hostname]``) over Celery's control
mailbox and waits for its reply, which is what the page shows. No reply means nothing is
known to have happened (the worker is offline, busy or gone): ActionUnavailable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks_admin.roles import Actor
from tasks_admin.services.base import (
    ActionConflict,
    ActionInvalid,
    ActionResult,
    ActionUnavailable,
    perform,
)
from tasks_admin.services.broker import (
    TARGETED_TIMEOUT,
    broadcast,
    replies_by_worker,
    reply_text,
)

# Celery's rate limit strings: "10", "10/s", "2.5/m", "100/h"; "0" or "" disables.
_RATE = re.compile(r"^\d{1,9}(\.\d{1,6})?(/[smh])?$")
MAX_COUNT = 10_000


@dataclass(frozen=True)
class Arg:
    name: str
    parse: Callable[[str, Any], Any]
    required: bool = True
    label: str = ""


def _count(minimum: int) -> Callable[[str, Any], int]:
    def parse(name: str, value: Any) -> int:
        if isinstance(value, bool):
            raise ActionInvalid(f"{name} must be a whole number, not {value!r}.")
        if isinstance(value, str):
            value = value.strip()
            if not value.isdigit():
                raise ActionInvalid(f"{name} must be a whole number of at least {minimum}.")
            value = int(value)
        if not isinstance(value, int) or value < minimum or value > MAX_COUNT:
            raise ActionInvalid(
                f"{name} must be a whole number from {minimum} to {MAX_COUNT}, not {value!r}."
            )
        return value

    return parse


def _seconds(name: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ActionInvalid(f"{name} must be a number of seconds, not {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ActionInvalid(f"{name} must be a number of seconds, not {value!r}.") from None
    if not 0 <= number <= 7 * 86400:
        raise ActionInvalid(f"{name} must be between 0 and 604800 seconds, not {value!r}.")
    return number


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ActionInvalid(f"{name} is required.")
    value = value.strip()
    if len(value) > 255 or any(ord(c) < 32 for c in value):
        raise ActionInvalid(f"{name} must be a name of at most 255 printable characters.")
    return value


def _rate(name: str, value: Any) -> str:
    text = str(value).strip() if value is not None else ""
    if text and not _RATE.match(text):
        raise ActionInvalid(
            f"{name} {text!r} is not a rate: use a number of tasks per second, minute or hour "
            "such as 10/s, 100/m or 1000/h (0 or empty turns the limit off)."
        )
    # "" is how Celery's worker is told to drop the limit (it answers "disabled").
    return "" if text in ("", "0") else text


# Each command and its arguments, in the order Celery's worker takes them.
COMMANDS: dict[str, tuple[Arg, ...]] = {
    "pool_grow": (Arg("n", _count(1), label="processes to add"),),
    "pool_shrink": (Arg("n", _count(1), label="processes to remove"),),
    "autoscale": (
        Arg("max", _count(0), label="most processes"),
        Arg("min", _count(0), label="fewest processes"),
    ),
    "add_consumer": (Arg("queue", _name, label="queue"),),
    "cancel_consumer": (Arg("queue", _name, label="queue"),),
    "rate_limit": (
        Arg("task_name", _name, label="task name"),
        Arg("rate_limit", _rate, required=False, label="rate (10/s, 100/m)"),
    ),
    "time_limit": (
        Arg("task_name", _name, label="task name"),
        Arg("soft", _seconds, required=False, label="soft limit (s)"),
        Arg("hard", _seconds, required=False, label="hard limit (s)"),
    ),
    "pool_restart": (),
    "shutdown": (),
}


def worker_control(*, actor: Actor, hostname: str, command: str, **arguments: Any) -> ActionResult:
    """Send ``command`` with ``arguments`` (see COMMANDS) to the worker ``hostname`` and
    return its reply (``data["reply"]``).

    ActionInvalid for an unknown command or a bad, missing or unexpected argument;
    ActionUnavailable when the worker does not answer within TARGETED_TIMEOUT;
    ActionConflict when it answers with an error (autoscale on a worker without
    --autoscale, a task name it does not know, pool restarts not enabled, ...).
    ``shutdown`` gets no reply (the worker stops), so the worker is pinged first.
    """
    params = {"command": command, **{k: _jsonable(v) for k, v in arguments.items()}}

    def run() -> ActionResult:
        host = _name("hostname", hostname)
        if command not in COMMANDS:
            raise ActionInvalid(
                f"Unknown worker command {command!r}; use one of {', '.join(COMMANDS)}."
            )
        parsed = _parse(command, arguments)
        if command == "shutdown":
            pong = broadcast("ping", destination=[host], timeout=TARGETED_TIMEOUT)
            if not replies_by_worker(pong):
                raise _silent(host)
            broadcast("shutdown", destination=[host], reply=False)
            return ActionResult(
                f"Shutdown sent to {host} (it answered a ping first); it stops after "
                "finishing the tasks it is running.",
                {"hostname": host, "command": command, "reply": None},
            )
        replies = broadcast(command, arguments=parsed, destination=[host], timeout=TARGETED_TIMEOUT)
        reply = replies_by_worker(replies).get(host)
        if reply is None:
            raise _silent(host)
        if isinstance(reply, dict) and "error" in reply:
            raise ActionConflict(f"{host} refused {command}: {reply['error']}")
        return ActionResult(
            f"{host}: {reply_text(reply)}",
            {"hostname": host, "command": command, "arguments": parsed, "reply": reply},
        )

    return perform(actor, "worker.control", targets=[str(hostname)], params=params, run=run)


def _parse(command: str, arguments: dict[str, Any]) -> dict[str, Any]:
    spec = COMMANDS[command]
    known = {arg.name for arg in spec}
    unexpected = sorted(set(arguments) - known)
    if unexpected:
        takes = ", ".join(sorted(known)) or "no arguments"
        raise ActionInvalid(f"{command} takes {takes}; unexpected: {', '.join(unexpected)}.")
    parsed: dict[str, Any] = {}
    for arg in spec:
        value = arguments.get(arg.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if arg.required:
                raise ActionInvalid(f"{command} needs {arg.name} ({arg.label}).")
            if arg.parse is _rate:
                parsed[arg.name] = _rate(arg.name, value)
            continue
        parsed[arg.name] = arg.parse(arg.name, value)
    if command == "autoscale" and parsed["min"] > parsed["max"]:
        raise ActionInvalid(f"autoscale min ({parsed['min']}) is above max ({parsed['max']}).")
    if command == "time_limit":
        soft, hard = parsed.get("soft"), parsed.get("hard")
        if soft is not None and hard is not None and soft > hard:
            raise ActionInvalid(f"The soft time limit ({soft}) is above the hard one ({hard}).")
    return parsed


def _silent(host: str) -> ActionUnavailable:
    return ActionUnavailable(
        f"{host} did not answer within {TARGETED_TIMEOUT:g} s: it may be offline, busy or "
        "gone. Nothing is known to have changed."
    )


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
