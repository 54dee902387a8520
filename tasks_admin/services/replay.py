"""Retry a task and replay or discard dead letters: publish the original message again.

A replay publishes the captured body ``[args, kwargs, embed]`` byte for byte as JSON, with
the original headers and routing, under a new task id: retries reset, no eta or expires,
``replay_of`` naming the original, chord membership (group, group_index, chord) stripped
unless asked for (DESIGN.md, "Faithful retry and replay"). The new task's TaskRecord row
(PENDING, ``replay_of`` set) and the letter's "replayed" mark are committed before the
message is published, so the collector's writer finds the row (and keeps ``replay_of``)
however soon the task's first event arrives; a publish the broker refuses takes both back.
A process killed between that commit and the publish leaves a PENDING row whose message
never left: the row says so (no events ever come), and the audit entry is missing.
"""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Sequence
from typing import Any

from celery import states
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu import Connection
from kombu.exceptions import OperationalError
from kombu.utils.encoding import safe_repr

from tasks_admin.deadletter import DEATH_HEADERS
from tasks_admin.models import DeadLetter, TaskRecord
from tasks_admin.roles import Actor
from tasks_admin.services.base import (
    ActionConflict,
    ActionInvalid,
    ActionNotFound,
    ActionResult,
    ActionUnavailable,
    perform,
)

RETRYABLE_STATES = (states.FAILURE, states.REVOKED, "LOST", states.REJECTED)
# Celery cuts argument reprs at 1024 characters (saferepr): one that long may be cut.
REPR_LIMIT = 1024
MAX_IDS = 500
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}
HOW_TO_CAPTURE = (
    "Install the dead-letter hook in the app the workers run "
    "(tasks_admin.deadletter.install(app)), or give its RabbitMQ queues a dead-letter "
    "exchange, so that tasks that fail from now on keep their original message."
)


def task_retry(
    *, actor: Actor, task_id: str, queue: str | None = None, keep_chord: bool = False
) -> ActionResult:
    """Run a failed, revoked, lost or rejected task again, under a new task id.

    Uses the task's captured message (its newest dead letter); without one, the task's
    argument reprs when they are complete plain literals (the result says ``rebuilt``);
    otherwise refuses (ActionConflict) saying why and how to enable capture.
    Result data: ``task_id`` (the new one), ``replay_of``, ``source`` (captured|rebuilt),
    ``dead_letter`` (its id or None), ``queue``.
    """

    def run() -> ActionResult:
        target = _queue_name(queue)
        task = TaskRecord.objects.filter(pk=task_id).first()
        if task is None:
            raise ActionNotFound(f"No task {task_id} is recorded.")
        if task.state not in RETRYABLE_STATES:
            raise ActionConflict(
                f"Task {task_id} is {task.state}: only tasks that ended FAILURE, REVOKED, "
                "LOST or REJECTED can be retried."
            )
        letter = (
            DeadLetter.objects.filter(task_id=task_id, body_complete=True)
            .order_by("-received_at", "-id")
            .first()
        )
        if letter is not None:
            new_id, where = _replay_letter(
                letter, actor=actor, queue=target, keep_chord=keep_chord, claim=False
            )
            return ActionResult(
                detail=f"Retried {task.name or 'task'} {task_id} as {new_id} with its "
                f"original message (into {where}).",
                data={
                    "task_id": new_id,
                    "replay_of": task_id,
                    "source": "captured",
                    "dead_letter": letter.pk,
                    "queue": where,
                },
            )
        args, kwargs = rebuild_arguments(task)
        new_id, where = _publish_rebuilt(task, args, kwargs, queue=target)
        return ActionResult(
            detail=f"Retried {task.name} {task_id} as {new_id} with arguments REBUILT from "
            f"their recorded reprs (no original message was captured; into {where}).",
            data={
                "task_id": new_id,
                "replay_of": task_id,
                "source": "rebuilt",
                "dead_letter": None,
                "queue": where,
            },
        )

    return perform(
        actor,
        "task.retry",
        targets=[task_id],
        params={"queue": (queue or "")[:255], "keep_chord": keep_chord},
        run=run,
    )


def deadletter_replay(
    *, actor: Actor, ids: Sequence[int | str], queue: str | None = None
) -> ActionResult:
    """Publish each new dead letter's original message again, optionally into ``queue``.

    Letters already replayed or discarded, or whose body was not captured as JSON, are
    skipped with the reason; when none could be replayed, ActionConflict. Result data:
    ``replayed`` ({dead letter id: new task id}), ``skipped`` ({id: reason}), ``missing``.
    """

    def run() -> ActionResult:
        wanted = _ids(ids)
        target = _queue_name(queue)
        replayed: dict[str, str] = {}
        skipped: dict[str, str] = {}
        found = set(DeadLetter.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        missing = [pk for pk in wanted if pk not in found]
        if not found:
            raise ActionNotFound(f"No dead letter {_list(wanted)} exists.")
        for pk in sorted(found):
            letter = DeadLetter.objects.get(pk=pk)
            reason = _not_replayable(letter)
            if not reason:
                try:
                    replayed[str(pk)], _ = _replay_letter(
                        letter, actor=actor, queue=target, keep_chord=False, claim=True
                    )
                    continue
                except _AlreadyTaken:
                    letter.refresh_from_db()
                    reason = _not_replayable(letter) or "was taken by another replay"
            skipped[str(pk)] = reason
        data = {"replayed": replayed, "skipped": skipped, "missing": missing}
        done = ": " + ", ".join(f"#{pk} as {new_id}" for pk, new_id in replayed.items())
        return _outcome("Replayed", len(replayed), done, skipped, missing, data)

    return perform(
        actor,
        "deadletter.replay",
        targets=[str(pk)[:64] for pk in list(ids)[:MAX_IDS]],
        params={"queue": (queue or "")[:255]},
        run=run,
    )


def deadletter_discard(*, actor: Actor, ids: Sequence[int | str]) -> ActionResult:
    """Mark new dead letters discarded (kept for the record, never replayed).

    Result data: ``discarded`` (ids), ``skipped`` ({id: reason}), ``missing``.
    """

    def run() -> ActionResult:
        wanted = _ids(ids)
        with transaction.atomic():
            letters = list(
                DeadLetter.objects.select_for_update().filter(pk__in=wanted).order_by("pk")
            )
            if not letters:
                raise ActionNotFound(f"No dead letter {_list(wanted)} exists.")
            found = {letter.pk for letter in letters}
            skipped = {
                str(letter.pk): f"is already {_state_text(letter)}"
                for letter in letters
                if letter.state != DeadLetter.State.NEW
            }
            discard = [letter.pk for letter in letters if letter.state == DeadLetter.State.NEW]
            DeadLetter.objects.filter(pk__in=discard).update(
                state=DeadLetter.State.DISCARDED,
                discarded_by=actor.username,
                discarded_at=timezone.now(),
            )
        missing = [pk for pk in wanted if pk not in found]
        data = {"discarded": discard, "skipped": skipped, "missing": missing}
        return _outcome("Discarded", len(discard), f" ({_list(discard)})", skipped, missing, data)

    return perform(
        actor,
        "deadletter.discard",
        targets=[str(pk)[:64] for pk in list(ids)[:MAX_IDS]],
        params={},
        run=run,
    )


# --- Helpers ---


def _outcome(
    verb: str,
    count: int,
    done: str,
    skipped: dict[str, str],
    missing: list[int],
    data: dict[str, Any],
) -> ActionResult:
    """What a replay or discard of many dead letters did, in one sentence; 409 if nothing.

    ``done`` follows "<verb> N dead letters" and names what was done to which.
    """
    reasons = "; ".join(f"#{pk} {why}" for pk, why in skipped.items())
    if not count:
        raise ActionConflict(f"Nothing was {verb.lower()}: {reasons}.")
    detail = f"{verb} {count} dead letter{'s' if count != 1 else ''}{done}"
    if skipped:
        detail += f"; skipped {len(skipped)} ({reasons})"
    if missing:
        detail += f"; {len(missing)} not found ({_list(missing)})"
    return ActionResult(detail=detail + ".", data=data)


def rebuild_arguments(task: TaskRecord) -> tuple[list[Any], dict[str, Any]]:
    """``(args, kwargs)`` from the task's recorded reprs, when they are surely complete.

    Complete means: shorter than Celery's 1024-character cut, plain Python literals
    (``ast.literal_eval``) with no ``...`` (saferepr's mark for what it left out), and
    values JSON carries unchanged. Otherwise ActionConflict saying which and why.
    """
    values = []
    for label, text, kind in (("args", task.args, (list, tuple)), ("kwargs", task.kwargs, dict)):
        reason = ""
        value: Any = None
        if not text:
            reason = f"its {label} were never recorded"
        elif len(text) >= REPR_LIMIT:
            reason = f"its {label} repr is {len(text)} characters, so Celery cut it at {REPR_LIMIT}"
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                reason = f"its {label} repr is not a plain Python literal"
            else:
                if not isinstance(value, kind):
                    reason = f"its {label} repr is not a {kind[0].__name__}"
                elif _has_ellipsis(value):
                    reason = f"its {label} repr was shortened by Celery ('...')"
                elif not _json_exact(value):
                    reason = f"its {label} hold values JSON cannot carry unchanged"
        if reason:
            raise ActionConflict(
                f"Task {task.task_id} has no captured message, and {reason}: it cannot be "
                f"retried faithfully. {HOW_TO_CAPTURE}"
            )
        values.append(value)
    return list(values[0]), dict(values[1])


def _has_ellipsis(value: Any) -> bool:
    if value is Ellipsis:
        return True
    if isinstance(value, dict):
        return any(_has_ellipsis(k) or _has_ellipsis(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_ellipsis(v) for v in value)
    return False


def _json_exact(value: Any) -> bool:
    top = list(value) if isinstance(value, tuple) else value
    try:
        return bool(json.loads(json.dumps(top)) == top)
    except (TypeError, ValueError):
        return False


def _not_replayable(letter: DeadLetter) -> str:
    if letter.state != DeadLetter.State.NEW:
        return f"is already {_state_text(letter)}"
    if not letter.body_complete:
        return "has no JSON body to publish (its message used another serializer)"
    if not letter.name:
        return "names no task"
    return ""


def _state_text(letter: DeadLetter) -> str:
    if letter.state == DeadLetter.State.REPLAYED:
        return f"replayed as {letter.replayed_as}"
    if letter.state == DeadLetter.State.DISCARDED:
        return f"discarded by {letter.discarded_by or 'someone'}"
    return str(letter.state)


def _ids(ids: Sequence[Any]) -> list[int]:
    try:
        wanted = list(dict.fromkeys(int(pk) for pk in ids))
    except (TypeError, ValueError):
        raise ActionInvalid("Dead letter ids are whole numbers.") from None
    if not wanted:
        raise ActionInvalid("Choose at least one dead letter.")
    if len(wanted) > MAX_IDS:
        raise ActionInvalid(f"At most {MAX_IDS} dead letters at a time.")
    return wanted


def _list(ids: Sequence[Any]) -> str:
    shown = ", ".join(f"#{pk}" for pk in list(ids)[:20])
    return shown + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")


def _queue_name(queue: str | None) -> str | None:
    queue = (queue or "").strip()
    if not queue:
        return None
    if len(queue) > 255 or any(ch.isspace() or ord(ch) < 32 for ch in queue):
        raise ActionInvalid("A queue name is at most 255 characters, without spaces.")
    return queue


def _app() -> Any:
    from console.celery import app

    return app


def _connection() -> Connection:
    """A connection to the broker the settings name (as every action uses, see
    services/broker.py) that confirms publishes on RabbitMQ (an unroutable replay raises)."""
    options = dict(_app().conf.broker_transport_options or {})
    if not _is_redis():
        options["confirm_publish"] = True
    return Connection(settings.CELERY_BROKER_URL, transport_options=options)


def _is_redis() -> bool:
    return str(settings.CELERY_BROKER_URL).split("://", 1)[0].lower().startswith("redis")


def _pending_row(
    *, new_id: str, name: str, replay_of: str, queue: str, args: str, kwargs: str, root_id: str
) -> None:
    now = timezone.now()
    TaskRecord.objects.create(
        task_id=new_id,
        name=name,
        state=states.PENDING,
        first_seen_at=now,
        last_event_at=now,
        updated_at=now,
        queue=queue[:255],
        args=args,
        kwargs=kwargs,
        root_id=root_id,
        replay_of=replay_of,
    )


def _replay_letter(
    letter: DeadLetter, *, actor: Actor, queue: str | None, keep_chord: bool, claim: bool
) -> tuple[str, str]:
    """Publish ``letter``'s message as a new task; returns (new task id, where it went).

    A new letter is marked replayed first; with ``claim``, a letter no longer new raises
    _AlreadyTaken (two people replaying it at once publish it once).
    """
    if not letter.body_complete:
        raise ActionConflict(
            f"Dead letter #{letter.pk} has no JSON body to publish (its message used another "
            "serializer)."
        )
    new_id = str(uuid.uuid4())
    original = letter.task_id
    headers = {
        k: v
        for k, v in letter.headers.items()
        if k not in DEATH_HEADERS
        and k not in ("compression", "redelivered")
        and not k.startswith("x-console-")
    }
    headers.update(
        id=new_id, task=letter.name, retries=0, eta=None, expires=None, replay_of=original
    )
    if headers.get("root_id") in (None, "", original):
        headers["root_id"] = new_id
    embed = dict(letter.embed or {})
    if not keep_chord:
        headers.update(group=None, group_index=None)
        embed["chord"] = None
    body = json.dumps([letter.args, letter.kwargs, embed])
    if queue:
        exchange, routing_key, target = "", queue, queue
    elif _is_redis():
        # Redis keeps a queue under its own name; its exchange tables may be gone.
        target = letter.queue or letter.routing_key
        exchange, routing_key = "", target
    else:
        exchange, routing_key = letter.exchange, letter.routing_key or letter.queue
        target = letter.queue or routing_key
    if not routing_key:
        raise ActionConflict(f"Dead letter #{letter.pk} names no queue or routing key.")
    with transaction.atomic():
        if claim or letter.state == DeadLetter.State.NEW:
            # The claim: whoever turns the letter from new to replayed publishes it.
            claimed = DeadLetter.objects.filter(pk=letter.pk, state=DeadLetter.State.NEW).update(
                state=DeadLetter.State.REPLAYED,
                replayed_as=new_id,
                replayed_by=actor.username,
                replayed_at=timezone.now(),
                replay_queue=target,
            )
            if claim and not claimed:
                raise _AlreadyTaken()
        _pending_row(
            new_id=new_id,
            name=letter.name,
            replay_of=original,
            queue=target,
            args=str(headers.get("argsrepr") or safe_repr(letter.args)),
            kwargs=str(headers.get("kwargsrepr") or safe_repr(letter.kwargs)),
            root_id=str(headers.get("root_id") or new_id),
        )
    # Committed before publishing: the collector's writer must find the row (and keep its
    # replay_of) however fast the new task's first event arrives.
    options: dict[str, Any] = {}
    if letter.priority is not None:
        options["priority"] = letter.priority
    try:
        _publish(
            body,
            content_type="application/json",
            content_encoding="utf-8",
            headers=headers,
            exchange=exchange,
            routing_key=routing_key,
            correlation_id=new_id,
            delivery_mode=2,
            **options,
        )
    except ActionUnavailable:
        _undo(new_id, letter_pk=letter.pk)
        raise
    return new_id, target


class _AlreadyTaken(Exception):
    """Another replay claimed this dead letter first."""


def _publish(body: str, **options: Any) -> None:
    """Publish one message; ActionUnavailable when the broker does not take it."""
    with _connection() as conn:
        errors: tuple[type[BaseException], ...] = (
            OSError,
            OperationalError,
            *conn.connection_errors,
            *conn.channel_errors,
        )
        try:
            conn.Producer().publish(body, retry=True, retry_policy=RETRY_POLICY, **options)
        except errors as exc:
            raise ActionUnavailable(
                f"The broker did not take the message ({type(exc).__name__}: {exc}); "
                "nothing was published."
            ) from exc


def _undo(new_id: str, *, letter_pk: int | None = None) -> None:
    """Take back the rows of a replay whose message never left."""
    TaskRecord.objects.filter(task_id=new_id, state=states.PENDING).delete()
    if letter_pk is not None:
        DeadLetter.objects.filter(pk=letter_pk, replayed_as=new_id).update(
            state=DeadLetter.State.NEW,
            replayed_as="",
            replayed_by="",
            replayed_at=None,
            replay_queue="",
        )


def _publish_rebuilt(
    task: TaskRecord, args: list[Any], kwargs: dict[str, Any], *, queue: str | None
) -> tuple[str, str]:
    new_id = str(uuid.uuid4())
    target = queue or task.queue or task.routing_key or ""
    if not task.name:
        raise ActionConflict(f"Task {task.task_id} has no recorded name to send.")
    _pending_row(
        new_id=new_id,
        name=task.name,
        replay_of=task.task_id,
        queue=target,
        args=task.args,
        kwargs=task.kwargs,
        root_id=new_id,
    )
    options: dict[str, Any] = {"queue": target} if target else {}
    try:
        # On a connection to the settings' broker: the app's cached producer pool may
        # point elsewhere (Celery lets CELERY_BROKER_URL in the environment override it).
        with _connection() as conn:
            _app().send_task(
                task.name,
                args,
                kwargs,
                task_id=new_id,
                headers={"replay_of": task.task_id, "replay_rebuilt": True},
                retry=True,
                retry_policy=RETRY_POLICY,
                connection=conn,
                **options,
            )
    except (OSError, OperationalError) as exc:
        _undo(new_id)
        raise ActionUnavailable(
            f"The broker did not take the message ({type(exc).__name__}: {exc}); "
            "nothing was published."
        ) from exc
    return new_id, target or "its default queue"
