"""The API's front door: a pure ASGI middleware that refuses a request before any route,
body parser or dependency sees it.

The body limit counts the bytes actually received, chunked or not: a ``Content-Length``
can be absent (``Transfer-Encoding: chunked``) or lie, so the header only allows an early
413 and the count is what holds. The body is read here, at most ``max_body`` bytes plus
the one chunk that crossed the limit, and handed on whole; a request over the limit never
reaches the app, so nothing of it is parsed or stored.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers

from hora.api import problems
from hora.limits import MAX_BODY_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: NUL in a URL (decoded in the path, %00 in the query): no record can be named by it, and
#: PostgreSQL refuses it in a query parameter.
_UNSTORABLE_URL = re.compile(r"%00|\x00")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: The one place a body may be an HTML form: the public unsubscribe page's button, and a
#: mail client's one-click unsubscribe (RFC 8058), post ``application/x-www-form-urlencoded``.
_FORM = "application/x-www-form-urlencoded"
_FORM_PATHS = ("/v1/unsubscribe/",)


class RequestGuard:
    """Body limit (413), NUL in the URL (422) and non-JSON bodies (415), as problem+json."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope["path"]
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._too_large(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if _UNSTORABLE_URL.search(path + "?" + query):
            await problems.problem(422, "invalid-request", "the URL contains a NUL character",
                                   instance=path)(scope, receive, send)
            return
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        has_body = chunked or length not in (None, "0")
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if (scope["method"] in _WITH_BODY and has_body
                and ctype not in ("application/json", "") and not ctype.endswith("+json")
                and not (ctype == _FORM and path.startswith(_FORM_PATHS))):
            await problems.problem(415, "unsupported-media-type",
                                   "send JSON with Content-Type: application/json, not "
                                   f"{headers.get('content-type', '')!r}",
                                   instance=path)(scope, receive, send)
            return
        if not has_body:
            await self.app(scope, receive, send)
            return
        body, too_large = await self._read(receive)
        if too_large:
            await self._too_large(scope, receive, send)
            return
        if body is None:  # the client left
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> tuple[bytes | None, bool]:
        """(the whole body, False); (None, True) once it passes the limit; (None, False)
        when the client disconnects."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, False
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None, True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server discards the unread rest of the body once the answer is complete.
        await problems.problem(413, "too-large", f"request bodies are limited to "
                               f"{self.max_body} bytes", instance=scope["path"],
                               errors=[{"field": "body", "message": "more than "
                                        f"{self.max_body} bytes"}])(scope, receive, send)
