"""What an answer means: the result, the error it stands for, or a wait before trying again.

Shared by both clients (no I/O). An error answer becomes the SDK's own exception, rebuilt
from the problem document's extension members (``hora.errors``); only what the API alone
answers (401/403, 429, 5xx) becomes one of the ``ApiError`` family.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Any

import httpx

from hora.client._requests import (
    BASE_WAIT,
    DEFAULT_URL,
    MAX_WAIT,
    PROBLEM_PREFIX,
    Json,
    T,
    _Call,
)
from hora.errors import (
    EXCEPTION_MEMBER,
    PROBLEM_CLASSES,
    ApiError,
    AuthError,
    Conflict,
    ConnectionFailed,
    HoraError,
    InvalidPayload,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)
from hora.http_target import parse_retry_after

# -- answers to results or errors -------------------------------------------------------------


def _result(call: _Call[T], response: httpx.Response) -> T:
    """The call's result from a final answer, or the error it stands for."""
    if not (response.is_success or response.status_code in call.answers):
        raise _error(response)
    if response.status_code == 204 or not response.content:
        data: Any = None
    else:
        try:
            data = response.json()
        except ValueError:
            raise ServerError(f"{call.method} {call.path}: the answer is not JSON: "
                              f"{response.text[:200]!r}", status=response.status_code
                              ) from None
    try:
        return call.decode(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ServerError(f"{call.method} {call.path}: unexpected answer ({e!r}): "
                          f"{response.text[:200]!r}", status=response.status_code) from e


def _problem(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    text = response.text.strip()[:500] or response.reason_phrase
    return {"type": "about:blank", "status": response.status_code, "detail": text}


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))


def _error(response: httpx.Response) -> HoraError:
    """The HoraError a problem answer stands for: the SDK's own class, rebuilt from the
    extension members the server wrote (``exception``, ``field``, ``job_id``...), or one of
    the ``ApiError`` family for what only the API answers."""
    status = response.status_code
    problem = _problem(response)
    slug = str(problem.get("type", "")).removeprefix(PROBLEM_PREFIX)
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    if status == 503 and slug == "store-unavailable":
        advised = _retry_after(response)
        return ServiceUnavailable(detail, status=status, problem=problem,
                                  retry_after=advised if advised is not None else
                                  _number(problem.get("retry_after")))
    kind = PROBLEM_CLASSES.get(str(problem.get(EXCEPTION_MEMBER)))
    if kind is not None and 400 <= status < 500:
        return _with_answer(kind.from_problem(detail, problem), status, problem)
    if status in (401, 403):
        auth = QuotaExceeded if slug == "quota-exceeded" else AuthError
        return auth(detail, status=status, problem=problem)
    if status == 429:
        return RateLimited(detail, status=status, problem=problem,
                           retry_after=_retry_after(response))
    if status >= 500:
        return ServerError(detail, status=status, problem=problem)
    # A problem without the SDK's members (the API's own checks, a proxy): by its type.
    err: HoraError
    if status == 404:
        err = NotFound(detail)
    elif status == 409:
        err = Conflict(detail)
    elif status in (400, 413, 415, 422):
        err = InvalidPayload(detail)
    else:
        return ApiError(f"HTTP {status}: {detail}", status=status, problem=problem)
    return _with_answer(err, status, problem)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _with_answer(err: HoraError, status: int, problem: Json) -> HoraError:
    """An SDK error with the answer it came from, as ``.status`` and ``.problem``."""
    err.status = status  # type: ignore[attr-defined]
    err.problem = problem  # type: ignore[attr-defined]
    return err


# -- when to try again ------------------------------------------------------------------------

#: Failures that happen before a request leaves: repeating it cannot run it twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Failures after which the request may or may not have run.
_LOST = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


def _backoff(attempt: int) -> float:
    """Equal jitter: between half and all of ``BASE_WAIT * 2**attempt``, at most MAX_WAIT."""
    cap = min(MAX_WAIT, BASE_WAIT * 2.0 ** attempt)
    return cap / 2 + random.uniform(0.0, cap / 2)


def _wait_after_error(call: _Call[Any], error: httpx.TransportError, attempt: int,
                      retries: int) -> float | None:
    """Seconds to wait before trying again after ``error``; None: give up."""
    if attempt >= retries:
        return None
    if isinstance(error, _NOT_SENT) or (call.safe and isinstance(error, _LOST)):
        return _backoff(attempt)
    return None


def _wait_after_answer(call: _Call[Any], response: httpx.Response, attempt: int,
                       retries: int) -> float | None:
    """Seconds to wait before trying again after ``response``; None: it is final."""
    if attempt >= retries or response.status_code in call.answers:
        return None
    status = response.status_code
    again = status == 429 or (call.safe and status == 503) or (
        status == 409 and call.idempotency_key is not None
        and _problem(response).get("type") == PROBLEM_PREFIX + "idempotency-key-in-flight")
    if not again:
        return None
    advised = _retry_after(response)
    return min(MAX_WAIT, advised) if advised is not None else _backoff(attempt)


def _connection_failed(base_url: str, call: _Call[Any],
                       error: httpx.TransportError) -> ConnectionFailed:
    what = type(error).__name__
    return ConnectionFailed(f"{call.method} {base_url}{call.path}: {what}: {error}".rstrip(": "),
                            status=None, problem=None)


# -- the clients ------------------------------------------------------------------------------


def _headers(api_key: str | None) -> dict[str, str]:
    from hora import __version__  # here: hora imports this module while it initialises

    headers = {"User-Agent": f"hora-python/{__version__}",
               "Accept": "application/json, application/problem+json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _settings(base_url: str | None, api_key: str | None, retries: int) -> tuple[str, str | None]:
    if retries < 0:
        raise ValueError("retries must be >= 0")
    url = (base_url or os.environ.get("HORA_URL") or DEFAULT_URL).rstrip("/")
    key = api_key if api_key is not None else os.environ.get("HORA_API_KEY") or None
    return url, key


def _request(http: httpx.Client | httpx.AsyncClient, call: _Call[Any]) -> httpx.Request:
    headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
    if call.has_body:
        try:
            return http.build_request(call.method, call.path, params=call.params,
                                      json=call.body, headers=headers)
        except (TypeError, ValueError, RecursionError) as e:  # NaN, inf, a set, a bomb
            raise InvalidPayload(f"cannot be sent as JSON: {e}", field="body") from None
    if call.wait:  # a long-poll: the server may hold the answer for up to ``wait`` seconds
        return http.build_request(call.method, call.path, params=call.params, headers=headers,
                                  timeout=httpx.Timeout(call.wait + LONG_POLL_MARGIN))
    return http.build_request(call.method, call.path, params=call.params, headers=headers)


#: Seconds a long-poll's read timeout allows beyond its ``wait``.
LONG_POLL_MARGIN = 30.0
