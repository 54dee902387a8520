"""The web process's HTTP handler: Django's ASGI handler, with one thread hop per request."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    """Runs the whole middleware chain and the view as one synchronous call.

    Django adapts each middleware to the mode of the one it wraps. Our stack mixes
    WhiteNoise (synchronous only) with MiddlewareMixin classes, which under an async
    chain send every process_request/process_view/process_response through its own
    sync_to_async: one API request crossed between the event loop and its thread about
    fifteen times, about a third of the web process's CPU per request (py-spy; figures
    in bench/README.md, "CPU per request"). Every view and middleware here is synchronous
    (the ORM is), so one sync_to_async around the synchronous chain does the same work,
    as WSGI would. Django's ThreadSensitiveContext still gives each request a thread of
    its own, so one slow request (a broker call, a big query) does not hold up the rest.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


def get_asgi_application() -> SyncChainASGIHandler:
    """django.core.asgi.get_asgi_application with this handler."""
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
