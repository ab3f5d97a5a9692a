"""HTTP targets: a job whose task is one HTTP call, so services in any language can schedule.

A job of task ``hora.http`` carries a *target* as its payload::

    {"url": "https://api.example.com/hooks/renew", "method": "POST",
     "headers": {"authorization": "Bearer ..."}, "body": {"plan": "pro"}, "timeout": 30}

At the due time a worker sends the request, signed per Standard Webhooks
(https://www.standardwebhooks.com) with the tenant's secret, so the receiver can tell the
call came from hora and was not replayed. ``webhook-id`` is the job id, the same on every
attempt, which lets the receiver deduplicate retries. The answer decides the job's fate:

    2xx                     succeeded; the result is the status, latency and a body excerpt
    5xx, timeout, no answer HttpTargetError: retried per the job's retry policy
    408, 429                Retry after ``Retry-After`` (or the policy's backoff without one)
    3xx, other 4xx          Fail: dead at once, since asking again gets the same answer

The worker refuses to call private, loopback and link-local addresses (SSRF: a tenant must
not reach the worker's own network, e.g. a cloud metadata endpoint) unless ``HORA_HTTP_ALLOW``
lists them. The API refuses such a target already at enqueue (``check_target_address``),
where a caller can still fix it; the worker checks again at each call, since what a name
resolves to can change in between.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import email.utils
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from hora.clock import monotonic
from hora.context import current_job
from hora.errors import (
    ConfigError,
    Fail,
    InvalidPayload,
    Retry,
    SignatureError,
)
from hora.models import Tenant

if TYPE_CHECKING:
    from hora.app import Hora, Task
    from hora.retry import RetryPolicy

__all__ = [
    "TASK_NAME",
    "AddressPolicy",
    "HttpTargetError",
    "HttpTargets",
    "SignatureError",
    "check_target_address",
    "deliver",
    "new_secret",
    "parse_retry_after",
    "parse_target",
    "register_http_task",
    "sign",
    "verify",
]

TASK_NAME = "hora.http"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_METHOD = "POST"
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
MAX_URL_LENGTH = 2048
RESULT_EXCERPT = 2048  # bytes of a 2xx body kept as the job's result
ERROR_EXCERPT = 1024  # characters of a failed answer kept in the error message
RETRY_AFTER_CAP = 86_400.0  # a receiver cannot park a job for longer than a day at a time
SIGNATURE_TOLERANCE = 300.0  # Standard Webhooks: refuse timestamps more than 5 min off
SECRET_PREFIX = "whsec_"
SECRET_CACHE_SECONDS = 60.0

_TARGET_FIELDS = frozenset({"url", "method", "headers", "body", "timeout"})
#: Set by the signer; a user value would break or forge the signature.
_SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})
#: Set by hora itself, from the job.
_HORA_HEADERS = frozenset({"hora-attempt", "hora-correlation-id"})
#: Describe the connection, not the message: the HTTP client owns them.
_HOP_BY_HOP = frozenset({"host", "content-length", "connection", "transfer-encoding"})
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 field-name

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class HttpTargetError(Exception):
    """The target did not answer usefully (5xx, timeout, connection failure).

    A plain ``Exception`` so the job's retry policy decides: these are the failures that
    asking again can fix.
    """


# -- the target ------------------------------------------------------------------------------


def parse_target(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a target and fill in defaults, naming the bad field in ``InvalidPayload``.

    Run when a job is created (so a caller hears about a typo at once, not at the due time)
    and again by the worker, which cannot trust a payload someone wrote to the database.
    Header names come back lower-cased: HTTP ignores their case, and duplicates differing
    only in case would otherwise be ambiguous.
    """
    if not isinstance(obj, Mapping):
        raise InvalidPayload("must be a JSON object", field="target")
    unknown = sorted(set(obj) - _TARGET_FIELDS)
    if unknown:
        raise InvalidPayload(f"unknown field(s) {', '.join(map(repr, unknown))}; "
                             f"fields are {', '.join(sorted(_TARGET_FIELDS))}", field="target")
    return {
        "url": _parse_url(obj.get("url")),
        "method": _parse_method(obj.get("method", DEFAULT_METHOD)),
        "headers": _parse_headers(obj.get("headers")),
        "body": _parse_body(obj.get("body")),
        "timeout": _parse_timeout(obj.get("timeout", DEFAULT_TIMEOUT)),
    }


def _parse_url(url: Any) -> str:
    if not isinstance(url, str) or not url:
        raise InvalidPayload("required, an http or https URL", field="target.url")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidPayload(f"longer than {MAX_URL_LENGTH} characters", field="target.url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise InvalidPayload(str(e), field="target.url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidPayload("must be an http or https URL", field="target.url")
    if parts.username is not None or parts.password is not None:
        # The URL is shown in job listings and error messages; a secret must not be.
        raise InvalidPayload("must not contain credentials; send them in an "
                             "authorization header", field="target.url")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise InvalidPayload("must not contain whitespace or control characters",
                             field="target.url")
    return url


def _parse_method(method: Any) -> str:
    m = method.upper() if isinstance(method, str) else method
    if m not in METHODS:
        raise InvalidPayload(f"{method!r} is not one of {', '.join(METHODS)}",
                             field="target.method")
    return str(m)


def _parse_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidPayload("must map strings to strings", field="target.headers")
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if not _TOKEN.match(name):
            raise InvalidPayload(f"{name!r} is not a valid header name", field="target.headers")
        if any(c in value for c in "\r\n\0"):
            raise InvalidPayload(f"the value of {name!r} contains a line break",
                                 field="target.headers")
        if key in _SIGNATURE_HEADERS or key in _HORA_HEADERS:
            raise InvalidPayload(f"{name!r} is set by hora and cannot be given",
                                 field="target.headers")
        if key in _HOP_BY_HOP:
            raise InvalidPayload(f"{name!r} is set by the HTTP client and "
                                 "cannot be given", field="target.headers")
        if key in out:
            raise InvalidPayload(f"{name!r} is given twice", field="target.headers")
        out[key] = value
    return out


def _parse_body(body: Any) -> Any:
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidPayload("must be a JSON value", field="target.body") from None
    return body


def _parse_timeout(timeout: Any) -> float:
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_TIMEOUT):
        raise InvalidPayload(f"must be between 0 and {MAX_TIMEOUT:g} seconds",
                             field="target.timeout")
    return float(timeout)


def encode_body(target: Mapping[str, Any]) -> tuple[bytes, str | None]:
    """The bytes to send and their default content type: these exact bytes are signed."""
    body = target.get("body")
    if body is None:
        return b"", None
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), \
        "application/json"


# -- Standard Webhooks signatures ------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 24 random bytes (the spec's format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _secret_key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        # Tolerate missing padding, as the reference libraries do.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{msg_id}.{timestamp}.{body}``, per Standard Webhooks."""
    mac = hmac.new(_secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body,
                   hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *,
           now: datetime | None = None, tolerance: float = SIGNATURE_TOLERANCE) -> None:
    """Check a received webhook; raise ``SignatureError`` unless one signature matches.

    For receivers written in Python and for tests. The timestamp window stops an attacker
    from replaying a captured request later; the receiver should also remember recent
    ``webhook-id`` values, since a replay inside the window still verifies.
    """
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = (h.get("webhook-id"), h.get("webhook-timestamp"),
                        h.get("webhook-signature"))
    if not (msg_id and ts and sigs):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not (ts.isascii() and ts.isdigit()):
        raise SignatureError(f"webhook-timestamp {ts!r} is not unix seconds")
    at = int(ts)
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - at) > tolerance:
        raise SignatureError(f"webhook-timestamp {at} is more than {tolerance:g}s from now")
    expected = sign(secret, msg_id, at, body)
    for candidate in sigs.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate, expected):
            return
    raise SignatureError("no matching signature")


# -- the SSRF guard --------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a target may resolve to: public ones, plus what ``allow`` lists.

    Known limit, DNS rebinding: the host is resolved and checked, then the HTTP client
    resolves it again to connect, so a name whose answer changes in between (a short TTL
    under an attacker's control) can still reach a refused address. Closing that needs
    connecting to the checked address itself; until then, run workers where a private
    network has nothing unauthenticated worth reaching, or behind an egress proxy.
    """

    allow: tuple[IPNetwork, ...] = ()
    allow_all: bool = False

    @classmethod
    def parse(cls, spec: str) -> AddressPolicy:
        """From ``HORA_HTTP_ALLOW``'s syntax: comma-separated IPs and CIDRs, or ``*``."""
        items = [s.strip() for s in spec.split(",") if s.strip()]
        if "*" in items:
            return cls(allow_all=True)
        nets: list[IPNetwork] = []
        for item in items:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"{item!r} is not an IP address or CIDR "
                                  "(or '*')", field="HORA_HTTP_ALLOW") from None
        return cls(allow=tuple(nets))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AddressPolicy:
        return cls.parse((os.environ if environ is None else environ).get("HORA_HTTP_ALLOW",
                                                                          ""))

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be called (e.g. ``"private"``), or None if it may."""
        if self.allow_all or self._allowed(ip):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            # An IPv6 form that carries an IPv4 address reaches that address: judge it. A
            # mapped or NAT64 form of a public address is that public address (an IPv6-only
            # network reaches IPv4 hosts through NAT64); a public 6to4 one is judged below.
            for label, embedded in (("IPv4-mapped", ip.ipv4_mapped),
                                    ("NAT64", _nat64_embedded(ip)),
                                    ("6to4", ip.sixtofour)):
                if embedded is not None:
                    inner = self.refusal(embedded)
                    if inner is not None or label != "6to4":
                        return None if inner is None else f"{label} {inner}"
        return _special_kind(ip) or _non_public_kind(ip)

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow)

    def check_host(self, host: str, port: int | None = None) -> list[IPAddress]:
        """Resolve ``host`` and raise ``Fail`` if any address is refused (the client may
        connect to any of them). Blocking: async code calls ``check``."""
        if self.allow_all:
            return []
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            # Often temporary (a resolver hiccup): let the retry policy try again.
            raise HttpTargetError(f"cannot resolve host {host}: {e}") from None
        found: list[IPAddress] = []
        for *_, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip in found:
                continue
            found.append(ip)
            kind = self.refusal(ip)
            if kind is not None:
                raise Fail(f"target.url: host {host} resolves to {kind} address {_show(ip)}; "
                           "set HORA_HTTP_ALLOW to permit it")
        return found

    async def check(self, url: str) -> list[IPAddress]:
        """``check_host`` for a URL's host, with the resolver run in a thread."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise Fail(f"target.url: {url!r} has no host")
        return await asyncio.to_thread(self.check_host, parts.hostname, parts.port)


#: How long enqueue waits for a name to resolve before leaving the verdict to the worker.
RESOLVE_TIMEOUT = 2.0
_resolver: concurrent.futures.ThreadPoolExecutor | None = None


def check_target_address(url: str, policy: AddressPolicy, *,
                         resolve_timeout: float = RESOLVE_TIMEOUT) -> None:
    """Refuse at enqueue, with ``InvalidPayload`` on ``target.url``, a target the worker
    would refuse anyway, so the caller hears it now instead of finding a dead job later.

    Only what cannot surprise is refused: a literal IP address the policy refuses, and a
    host name whose every address is refused (``localhost``, a name pointing into a private
    network). A name with one public address among refused ones, a name that does not
    resolve (yet) or one whose resolver is slow is accepted: DNS can change before the due
    time, and the worker's own check (``AddressPolicy.check``, which refuses if *any*
    address is refused) decides then. Blocking, for at most ``resolve_timeout`` seconds.
    """
    if policy.allow_all:
        return
    host = urlsplit(url).hostname
    if not host:
        return  # parse_target refuses it
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        kind = policy.refusal(literal)
        if kind is not None:
            raise InvalidPayload(f"{_show(literal)} is a {kind} address, which workers do not "
                                 "call; set HORA_HTTP_ALLOW on the server and the workers "
                                 "to permit it", field="target.url")
        return
    refused = _refused_addresses(host, policy, resolve_timeout)
    if refused:
        shown = ", ".join(f"{kind} {_show(ip)}" for ip, kind in refused)
        raise InvalidPayload(f"host {host} resolves only to addresses workers do not call "
                             f"({shown}); set HORA_HTTP_ALLOW on the server and the workers "
                             "to permit them", field="target.url")


def _refused_addresses(host: str, policy: AddressPolicy,
                       timeout: float) -> list[tuple[IPAddress, str]]:
    """Every address of ``host`` with why it is refused, if all of them are; else ``[]``
    (also when the name does not resolve within ``timeout``)."""
    global _resolver
    if _resolver is None:
        # Shared and bounded: a resolver that hangs ties up these threads, not the API's.
        _resolver = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="hora-resolve")
    future = _resolver.submit(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except (OSError, UnicodeError, concurrent.futures.TimeoutError):
        return []
    found: list[tuple[IPAddress, str]] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        kind = policy.refusal(ip)
        if kind is None:
            return []
        if all(ip != seen for seen, _ in found):
            found.append((ip, kind))
    return found


def _show(ip: IPAddress) -> str:
    """An address as people write it: ``::ffff:127.0.0.1``, not ``::ffff:7f00:1``."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4
#: Refused by name whatever the running Python's ``ipaddress`` tables say (they changed
#: between versions, and ``fec0::/10``, deprecated but routed on some networks, is "global"
#: to them). Checked after the loopback and unspecified addresses, which ``::/96`` holds too.
_SPECIAL: tuple[tuple[str, IPNetwork], ...] = tuple(
    (label, ipaddress.ip_network(net)) for label, net in (
        ("this-network", "0.0.0.0/8"),
        ("carrier-grade NAT", "100.64.0.0/10"),
        ("6to4 relay", "192.88.99.0/24"),
        ("benchmarking", "198.18.0.0/15"),
        ("multicast", "224.0.0.0/4"),
        ("broadcast", "255.255.255.255/32"),
        ("reserved", "240.0.0.0/4"),
        ("IPv4-compatible", "::/96"),
        ("local-use NAT64", "64:ff9b:1::/48"),
        ("discard-only", "100::/64"),
        ("Teredo", "2001::/32"),
        ("documentation", "2001:db8::/32"),
        ("site-local", "fec0::/10"),
    ))


def _nat64_embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF) if ip in _NAT64 else None


def _special_kind(ip: IPAddress) -> str | None:
    if ip.is_unspecified or ip.is_loopback:
        return None  # named by _non_public_kind
    return next((label for label, net in _SPECIAL
                 if ip.version == net.version and ip in net), None)


def _non_public_kind(ip: IPAddress) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"  # e.g. 100.64.0.0/10, carrier-grade NAT
    return None


# -- delivery --------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (delta-seconds or an HTTP-date), capped
    at a day; None when absent or unreadable, so the retry policy's backoff applies."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # HTTP-dates are GMT
    return min(max(0.0, (at - now).total_seconds()), RETRY_AFTER_CAP)


async def _read_excerpt(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` bytes of the body, as text: a target's answer is a receipt, and a
    huge one must not fill the worker's memory or the database."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    data = b"".join(chunks)[:limit]
    try:
        return data.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", errors="replace")


async def deliver(target: Mapping[str, Any], *, secret: str, msg_id: str,
                  client: httpx.AsyncClient, policy: AddressPolicy,
                  now: Callable[[], datetime], attempt: int | None = None,
                  correlation_id: str | None = None) -> dict[str, Any]:
    """Make one signed call to a parsed target and map the answer to the job's outcome.

    Returns ``{"status", "latency_ms", "response"}`` on 2xx; otherwise raises
    ``HttpTargetError`` (retry per policy), ``Retry`` (408/429) or ``Fail`` (other answers).
    ``timeout`` bounds the whole exchange, not each read, so a trickling answer cannot
    hold a worker slot for longer.
    """
    method, url, timeout = target["method"], target["url"], target["timeout"]
    content, content_type = encode_body(target)
    ts = int(now().timestamp())
    headers = dict(target["headers"])
    if content_type is not None and "content-type" not in headers:
        headers["content-type"] = content_type
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(ts)
    headers["webhook-signature"] = sign(secret, msg_id, ts, content)
    if attempt is not None:
        headers["hora-attempt"] = str(attempt)
    if correlation_id:
        headers["hora-correlation-id"] = correlation_id
    started = monotonic()

    def took() -> float:
        return round((monotonic() - started) * 1000, 1)

    try:
        async with asyncio.timeout(timeout):
            await policy.check(url)
            async with client.stream(method, url, content=content or None, headers=headers,
                                     timeout=timeout, follow_redirects=False) as response:
                excerpt = await _read_excerpt(response, RESULT_EXCERPT)
    except (TimeoutError, httpx.TimeoutException) as e:
        raise HttpTargetError(f"{method} {url}: timed out after {timeout:g}s") from e
    except httpx.TransportError as e:
        raise HttpTargetError(
            f"{method} {url}: {type(e).__name__}: {e or 'connection failed'} "
            f"after {took():g} ms") from e
    status = response.status_code
    latency = took()
    if 200 <= status < 300:
        return {"status": status, "latency_ms": latency, "response": excerpt}
    what = f"{method} {url} answered {status} {response.reason_phrase} after {latency:g} ms"
    detail = f": {excerpt[:ERROR_EXCERPT]}" if excerpt else ""
    if status in (408, 429):
        delay = parse_retry_after(response.headers.get("retry-after"), now())
        when = "" if delay is None else f"; retry after {delay:g}s"
        raise Retry(delay=delay, reason=f"{what}{when}{detail}")
    if status >= 500:
        raise HttpTargetError(f"{what}{detail}")
    raise Fail(f"{what} (not retried){detail}")


# -- the task --------------------------------------------------------------------------------


@dataclass
class HttpTargets:
    """What ``register_http_task`` sets up for one app: the HTTP client, the address policy
    and a short-lived cache of tenants' signing secrets (a secret read per call would put a
    database query on every delivery; 60 s bounds how long a rotated secret stays in use)."""

    app: Hora
    policy: AddressPolicy
    task: Task[..., Any] | None = None
    _client: httpx.AsyncClient | None = field(default=None, repr=False)
    _client_loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _secrets: dict[str, tuple[str, datetime]] = field(default_factory=dict, repr=False)

    def client(self) -> httpx.AsyncClient:
        """The shared client, created on first use. A client's pooled connections belong to
        one event loop, so a new loop (another ``asyncio.run``) gets a new client."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the client's pooled connections (when the worker's loop stops)."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.aclose()

    async def secret(self, tenant_id: str) -> str:
        """The tenant's signing secret; a tenant without a record gets one on first use."""
        now = self.app.clock.now()
        cached = self._secrets.get(tenant_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        fresh = Tenant(id=tenant_id, name=tenant_id, webhook_secret=new_secret(),
                       max_pending_jobs=None, max_active_schedules=None, rate_limit=None,
                       created_at=now, updated_at=now)
        tenant = await asyncio.to_thread(self.app.store.ensure_tenant, fresh)
        self._secrets[tenant_id] = (tenant.webhook_secret,
                                    now + timedelta(seconds=SECRET_CACHE_SECONDS))
        return tenant.webhook_secret

    async def run(self, target: Mapping[str, Any]) -> dict[str, Any]:
        """The task's body: validate the payload, sign with the tenant's secret, deliver."""
        try:
            parsed = parse_target(target)
        except InvalidPayload as e:
            raise Fail(str(e)) from None
        ctx = current_job()
        return await deliver(parsed, secret=await self.secret(ctx.tenant_id), msg_id=ctx.job_id,
                             client=self.client(), policy=self.policy, now=self.app.clock.now,
                             attempt=ctx.attempt, correlation_id=ctx.correlation_id)


def register_http_task(app: Hora, *, policy: AddressPolicy | None = None,
                       retry: RetryPolicy | None = None) -> HttpTargets:
    """Register the ``hora.http`` task on ``app`` and return its handle.

    Enqueue with ``app.enqueue("hora.http", target)``: the target's ``timeout`` field would
    otherwise be taken for the enqueue option of that name. ``policy`` defaults to
    ``HORA_HTTP_ALLOW``, read now. Call ``await handle.aclose()`` when the worker stops.
    """
    targets = HttpTargets(app, policy if policy is not None else AddressPolicy.from_env())

    # **target, not named parameters: "timeout" is an enqueue option, which Task refuses
    # as a parameter name; parse_target checks the fields instead.
    async def http_target(**target: Any) -> dict[str, Any]:
        return await targets.run(target)

    targets.task = app.task(name=TASK_NAME, retry=retry)(http_target)
    return targets
