"""The Python client of the HTTP API: ``hora.Client`` (sync) and ``hora.AsyncClient``.

    from hora import Client

    with Client("https://hora.example.com", api_key="hora_...") as hora:
        job = hora.enqueue("reports.build", {"month": "2026-01"}, delay=300)
        hora.get_job(job.id).state

The methods mirror the in-process SDK (``hora.Hora``): they return the same records
(``Job``, ``Schedule``, ``Tick``, ``Workflow``, ``HistoryEntry``, ``Signal``, ``Page``) and
raise the same ``HoraError`` tree, mapped from the server's RFC 9457 problem documents
(``NotFound``, ``InvalidTrigger``, ``IdempotencyConflict``...), rebuilt with their typed
fields from the document's extension members. Errors only the network can produce live in
``hora.errors`` too and are importable from here: ``AuthError``, ``RateLimited``,
``ServerError`` (503 ``store-unavailable``: ``ServiceUnavailable``, also a
``StoreUnavailable``) and ``ConnectionFailed``. Every exception raised for an answer
carries ``.status`` and the problem document as ``.problem``.

Retries: every POST carries a fresh ``Idempotency-Key``, so the server runs it at most once
and answers a retry with the first response. A request is retried (up to ``retries`` times,
with jittered exponential backoff of at most 5 s a wait) on a connection that could not be
made, a 429 (after its ``Retry-After``, capped at 5 s), and, when the request is safe to
repeat (GET, DELETE, a keyed POST), on a 503 or a connection lost mid-request.

The two clients share everything but the I/O: a method builds a ``_Call`` (the request and
how to read its answer) with pure functions, and each client only sends it. Each operation
is written once, in ``_async.py`` (``AsyncClient``); ``_sync.py`` (``Client``) is generated
from it by ``scripts/unasync_client.py``.

    _requests.py   options, ``_Call`` and every operation's builder (no I/O)
    _answers.py    an answer as a result, an error or a wait before retrying (no I/O)
    _async.py      AsyncClient, written by hand
    _sync.py       Client, generated
"""

from __future__ import annotations

from hora.client._async import AsyncClient
from hora.client._requests import (
    BASE_WAIT,
    DEFAULT_URL,
    MAX_WAIT,
    PROBLEM_PREFIX,
    JobOptions,
    ScheduleChanges,
    ScheduleOptions,
    TenantChanges,
    _Call,
    _dict,
    _Requests,
)
from hora.client._sync import Client
from hora.errors import (
    ApiError,
    AuthError,
    ConnectionFailed,
    QuotaExceeded,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)

__all__ = [
    "BASE_WAIT",
    "DEFAULT_URL",
    "MAX_WAIT",
    "PROBLEM_PREFIX",
    "ApiError",
    "AsyncClient",
    "AuthError",
    "Client",
    "ConnectionFailed",
    "JobOptions",
    "QuotaExceeded",
    "RateLimited",
    "ScheduleChanges",
    "ScheduleOptions",
    "ServerError",
    "ServiceUnavailable",
    "TenantChanges",
    "_Call",
    "_Requests",
    "_dict",
]
