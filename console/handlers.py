"""The web process's HTTP handler: Django's ASGI handler with one thread hop per request,
on threads that are reused."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

# Idle request threads kept for reuse; a burst beyond this starts (and then ends) more.
IDLE_THREADS_KEPT = 64


class ConsoleASGIHandler(ASGIHandler):
    """Django's ASGIHandler, doing the same work for a fraction of its overhead.

    One hop: Django adapts each middleware to the mode of the one it wraps. Our stack
    mixes WhiteNoise (synchronous only) with MiddlewareMixin classes, which under an async
    chain send every process_request/process_view/process_response through a
    sync_to_async of its own, and the request_started signal and response.close() (the
    request_finished signal) take one more each: an API request crossed between the event
    loop and a thread about seventeen times. Every view and middleware here is synchronous
    (the ORM is), so a request's synchronous work runs as one call in one thread, as under
    WSGI, and the event loop only reads the body and writes the response.

    Reused threads: that thread comes from a free list. Django's handler made a new
    ThreadPoolExecutor per request, which asgiref then shut down from yet another new
    thread: two thread starts per request, and asgiref's context bookkeeping around
    every hop.

    bench/README.md ("CPU per request") has what this saved.
    """

    def __init__(self) -> None:
        self._idle_threads: list[ThreadPoolExecutor] = []  # touched by the event loop only
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self._idle_threads.pop() if self._idle_threads else _request_thread()
        await self._serve(scope, receive, send, thread)
        # Not reached when the request raised or was cancelled: work of that request may
        # still be queued on the thread, so it is not reused.
        if len(self._idle_threads) < IDLE_THREADS_KEPT:
            self._idle_threads.append(thread)
        else:
            thread.shutdown(wait=False)

    async def _serve(
        self, scope: dict[str, Any], receive: Receive, send: Send, thread: ThreadPoolExecutor
    ) -> None:
        """ASGIHandler.handle, with the synchronous work in one call on ``thread``."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        context = contextvars.copy_context()  # what sync_to_async would hand the thread
        response = await asyncio.get_running_loop().run_in_executor(
            thread, context.run, self._respond, scope, body_file
        )
        # A client that went away gets nothing: uvicorn drops what is sent to it. (Django's
        # own handle() cancels the request instead, which stops async views; a sync view
        # runs to its end in its thread either way.)
        if response.streaming:
            # Django iterates a synchronous stream and closes it with thread-sensitive
            # sync_to_async calls: in this request's thread, like the rest of its work.
            async with ThreadSensitiveContext(executor=thread):
                await self.send_response(response, send)
                await sync_to_async(response.close, thread_sensitive=True)()
        else:
            await self.send_response(response, send)
        body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: IO[bytes]) -> HttpResponseBase:
        """Everything synchronous about a request, in its thread, in Django's order."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        assert response is not None
        if not response.streaming:
            # The body is built: request_finished now returns the database connection
            # while the event loop writes the bytes.
            response.close()
        return response


def _request_thread() -> ThreadPoolExecutor:
    # One worker: all of a request's thread-bound work must run on the same thread.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")


def get_asgi_application() -> ConsoleASGIHandler:
    """django.core.asgi.get_asgi_application with this handler."""
    import django

    django.setup(set_prefix=False)
    return ConsoleASGIHandler()
