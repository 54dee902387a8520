"""The web process's HTTP handler: Django's ASGI handler with one thread hop per request,
on threads that are reused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

# Idle request threads kept for reuse; a burst beyond this starts (and then ends) more.
IDLE_THREADS_KEPT = 64


class ConsoleASGIHandler(ASGIHandler):
    """Django's ASGIHandler, cheaper per request in two ways.

    One hop: Django adapts each middleware to the mode of the one it wraps. Our stack
    mixes WhiteNoise (synchronous only) with MiddlewareMixin classes, which under an async
    chain send every process_request/process_view/process_response through a
    sync_to_async of its own: an API request crossed between the event loop and its
    thread about fifteen times. Every view and middleware here is synchronous (the ORM
    is), so the chain is built synchronous and entered with one sync_to_async, as WSGI
    would run it.

    Reused threads: each request still gets a thread of its own for its thread-sensitive
    work (Django's connections are per thread, and one slow request must not hold up the
    others), but from a free list instead of a new ThreadPoolExecutor per request, which
    asgiref then shuts down from yet another new thread: two thread starts per request.

    bench/README.md ("CPU per request") has what each saved.
    """

    _middleware_chain: Any

    def __init__(self) -> None:
        self._idle_threads: list[ThreadPoolExecutor] = []  # touched by the event loop only
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Mapping[str, Any]]],
        send: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self._idle_threads.pop() if self._idle_threads else _request_thread()
        async with ThreadSensitiveContext(executor=thread):
            await self.handle(scope, receive, send)
        # Not reached when the request raised or was cancelled (a client that went away):
        # then work of that request may still be queued on the thread, so it is not reused.
        if len(self._idle_threads) < IDLE_THREADS_KEPT:
            self._idle_threads.append(thread)
        else:
            thread.shutdown(wait=False)


def _request_thread() -> ThreadPoolExecutor:
    # One worker: thread-sensitive calls of a request must all run on the same thread.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")


def get_asgi_application() -> ConsoleASGIHandler:
    """django.core.asgi.get_asgi_application with this handler."""
    import django

    django.setup(set_prefix=False)
    return ConsoleASGIHandler()
