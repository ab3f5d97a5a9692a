"""HTTP targets without a network: target validation, Standard Webhooks signatures checked
against the reference ``standardwebhooks`` package, the SSRF address policy on IP literals
(which resolve without DNS), and Retry-After parsing."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hora.errors import ConfigError, Fail, InvalidPayload
from hora.http_target import (
    AddressPolicy,
    SignatureError,
    encode_body,
    new_secret,
    parse_retry_after,
    parse_target,
    sign,
    verify,
)

# The example from the Standard Webhooks / Svix documentation.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# -- parse_target ----------------------------------------------------------------------------


def test_defaults_fill_in_method_headers_body_and_timeout() -> None:
    assert parse_target({"url": "https://api.example.com/hook"}) == {
        "url": "https://api.example.com/hook", "method": "POST", "headers": {}, "body": None,
        "timeout": 30.0}


def test_normalises_method_case_header_names_and_integer_timeouts() -> None:
    t = parse_target({"url": "http://h:8080/p?q=1", "method": "put",
                      "headers": {"Authorization": "Bearer x", "X-Trace": "1"},
                      "body": [1, "two"], "timeout": 5})
    assert t["method"] == "PUT" and t["timeout"] == 5.0 and isinstance(t["timeout"], float)
    assert t["headers"] == {"authorization": "Bearer x", "x-trace": "1"}
    assert t["body"] == [1, "two"]


@pytest.mark.parametrize(("target", "message"), [
    ({}, "target.url: required"),
    ({"url": 42}, "target.url: required"),
    ({"url": "ftp://example.com/x"}, "target.url: must be an http or https URL"),
    ({"url": "example.com/x"}, "target.url: must be an http or https URL"),
    ({"url": "http:///no-host"}, "target.url: must be an http or https URL"),
    ({"url": "http://h:99999/"}, "target.url: Port out of range"),
    ({"url": "https://user:pw@example.com/"}, "target.url: must not contain credentials"),
    ({"url": "http://example.com/a b"}, "target.url: must not contain whitespace"),
    ({"url": "http://example.com/" + "a" * 2048}, "target.url: longer than 2048"),
    ({"url": "http://h/", "method": "FOO"},
     "target.method: 'FOO' is not one of GET, POST, PUT, PATCH, DELETE"),
    ({"url": "http://h/", "method": 1}, "target.method: 1 is not one of"),
    ({"url": "http://h/", "headers": ["a"]}, "target.headers: must map strings to strings"),
    ({"url": "http://h/", "headers": {"a": 1}}, "target.headers: must map strings to strings"),
    ({"url": "http://h/", "headers": {"bad name": "v"}}, "not a valid header name"),
    ({"url": "http://h/", "headers": {"x": "a\r\nb: c"}}, "contains a line break"),
    ({"url": "http://h/", "headers": {"Webhook-Signature": "v1,x"}}, "is set by hora"),
    ({"url": "http://h/", "headers": {"webhook-id": "x"}}, "is set by hora"),
    ({"url": "http://h/", "headers": {"webhook-timestamp": "1"}}, "is set by hora"),
    ({"url": "http://h/", "headers": {"hora-attempt": "1"}}, "is set by hora"),
    ({"url": "http://h/", "headers": {"Host": "other"}}, "is set by the HTTP client"),
    ({"url": "http://h/", "headers": {"content-length": "1"}}, "is set by the HTTP client"),
    ({"url": "http://h/", "headers": {"Connection": "close"}}, "is set by the HTTP client"),
    ({"url": "http://h/", "headers": {"transfer-encoding": "x"}}, "is set by the HTTP client"),
    ({"url": "http://h/", "headers": {"X-A": "1", "x-a": "2"}}, "is given twice"),
    ({"url": "http://h/", "body": {1, 2}}, "target.body: must be a JSON value"),
    ({"url": "http://h/", "body": float("nan")}, "target.body: must be a JSON value"),
    ({"url": "http://h/", "timeout": 0}, "target.timeout: must be between 0 and 300 seconds"),
    ({"url": "http://h/", "timeout": 301}, "target.timeout: must be between 0 and 300"),
    ({"url": "http://h/", "timeout": "5"}, "target.timeout: must be between 0 and 300"),
    ({"url": "http://h/", "timeout": True}, "target.timeout: must be between 0 and 300"),
    ({"url": "http://h/", "retries": 3}, "target: unknown field(s) 'retries'"),
])
def test_invalid_targets_are_refused_naming_the_field(target: dict[str, Any],
                                                      message: str) -> None:
    with pytest.raises(InvalidPayload) as e:
        parse_target(target)
    assert message in str(e.value)


def test_a_target_must_be_an_object() -> None:
    with pytest.raises(InvalidPayload, match="target: must be a JSON object"):
        parse_target(["http://h/"])  # type: ignore[arg-type]


@pytest.mark.parametrize(("body", "content", "content_type"), [
    (None, b"", None),
    ({"a": "é"}, '{"a":"é"}'.encode(), "application/json"),
    ([1, 2], b"[1,2]", "application/json"),
    (7, b"7", "application/json"),
    ("plain words", b"plain words", "text/plain; charset=utf-8"),
])
def test_body_encoding_by_type(body: Any, content: bytes, content_type: str | None) -> None:
    assert encode_body(parse_target({"url": "http://h/", "body": body})) == (
        content, content_type)


# -- signatures ------------------------------------------------------------------------------


def test_the_published_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS),
               "webhook-signature": VECTOR_SIGNATURE}
    verify(VECTOR_SECRET, headers, VECTOR_BODY,
           now=datetime.fromtimestamp(VECTOR_TS + 10, UTC))


@given(msg_id=st.text(min_size=1, max_size=40), timestamp=st.integers(0, 2**33),
       body=st.text(max_size=200))
def test_our_signature_equals_the_reference_packages(msg_id: str, timestamp: int,
                                                      body: str) -> None:
    expected = Webhook(VECTOR_SECRET).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), body)
    assert sign(VECTOR_SECRET, msg_id, timestamp, body.encode()) == expected


def test_the_reference_package_verifies_what_we_sign() -> None:
    secret = new_secret()
    body = b'{"order":"o-1"}'
    ts = int(datetime.now(UTC).timestamp())  # the package checks against the wall clock
    headers = {"webhook-id": "job_1", "webhook-timestamp": str(ts),
               "webhook-signature": sign(secret, "job_1", ts, body)}
    assert Webhook(secret).verify(body, headers) == {"order": "o-1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_new_secrets_are_24_random_bytes_in_whsec_form() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_") and len(a) == len("whsec_") + 32
    Webhook(a)  # the reference package accepts it


def test_a_secret_without_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not base64!", "id", 1, b"")
    with pytest.raises(ValueError, match="empty"):
        sign("whsec_", "id", 1, b"")


NOW = datetime(2030, 1, 1, tzinfo=UTC)
TS = int(NOW.timestamp())


def _signed(secret: str, body: bytes = b"{}", ts: int = TS) -> dict[str, str]:
    return {"Webhook-Id": "m1", "Webhook-Timestamp": str(ts),
            "Webhook-Signature": sign(secret, "m1", ts, body)}


def test_verify_accepts_any_of_several_signatures_during_a_rotation() -> None:
    old, new = new_secret(), new_secret()
    headers = _signed(new)
    headers["Webhook-Signature"] = f"v2,xyz {sign(old, 'm1', TS, b'{}')} " + \
        headers["Webhook-Signature"]
    verify(new, headers, b"{}", now=NOW)
    verify(old, headers, b"{}", now=NOW)
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(new_secret(), headers, b"{}", now=NOW)


def test_verify_refuses_tampering_stale_and_missing_headers() -> None:
    secret = new_secret()
    with pytest.raises(SignatureError, match="no matching"):
        verify(secret, _signed(secret), b'{"x":1}', now=NOW)
    verify(secret, _signed(secret), b"{}", now=NOW + timedelta(minutes=5))
    with pytest.raises(SignatureError, match="from now"):
        verify(secret, _signed(secret), b"{}", now=NOW + timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureError, match="from now"):
        verify(secret, _signed(secret), b"{}", now=NOW - timedelta(minutes=6))
    with pytest.raises(SignatureError, match="missing"):
        verify(secret, {"webhook-id": "m1"}, b"{}", now=NOW)
    headers = _signed(secret)
    headers["Webhook-Timestamp"] = "soon"
    with pytest.raises(SignatureError, match="unix seconds"):
        verify(secret, headers, b"{}", now=NOW)


# -- the address policy ----------------------------------------------------------------------

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("10.0.0.5", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.5", "IPv4-mapped private"),
    ("2002:7f00:1::", "6to4 loopback"),
    # Deprecated, special-purpose or IPv4-carrying IPv6 forms (issue #9).
    ("fec0::1", "site-local"),
    ("feff:ffff::1", "site-local"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("64:ff9b::10.0.0.5", "NAT64 private"),
    ("64:ff9b::7f00:1", "NAT64 loopback"),
    ("64:ff9b::169.254.169.254", "NAT64 link-local"),
    ("64:ff9b:1::a00:5", "local-use NAT64"),
    ("2002:a00:5::1", "6to4 private"),
    ("2002:6440:1::1", "6to4 carrier-grade NAT"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo"),
    ("::ffff:100.64.0.1", "IPv4-mapped carrier-grade NAT"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::ffff:255.255.255.255", "IPv4-mapped broadcast"),
    ("0.1.2.3", "this-network"),
    ("100.127.255.255", "carrier-grade NAT"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("198.18.0.1", "benchmarking"),
    ("192.88.99.1", "6to4 relay"),
    ("100::1", "discard-only"),
    ("2001:db8::1", "documentation"),
    ("fd12:3456::1", "private"),
]


@pytest.mark.parametrize(("ip", "kind"), BLOCKED)
def test_non_public_addresses_are_refused_by_default(ip: str, kind: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(ip)) == kind


@pytest.mark.parametrize("ip", ["93.184.216.34", "2606:2800:220:1::1",
                                "::ffff:93.184.216.34", "64:ff9b::93.184.216.34",
                                "2002:5db8:d822::1", "100.63.255.255", "100.128.0.0"])
def test_public_addresses_pass(ip: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(ip)) is None


def test_the_allow_list_permits_what_it_names_and_nothing_else() -> None:
    policy = AddressPolicy.from_env({"HORA_HTTP_ALLOW": " 127.0.0.0/8, ::1 ,10.1.2.3"})
    for ip in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "10.1.2.3"):
        assert policy.refusal(ipaddress.ip_address(ip)) is None, ip
    for ip, kind in [("10.1.2.4", "private"), ("169.254.169.254", "link-local"),
                     ("::2", "IPv4-compatible")]:
        assert policy.refusal(ipaddress.ip_address(ip)) == kind


def test_star_allows_everything_without_resolving() -> None:
    policy = AddressPolicy.from_env({"HORA_HTTP_ALLOW": "*"})
    assert policy.allow_all
    for ip, _kind in BLOCKED:
        assert policy.refusal(ipaddress.ip_address(ip)) is None
    assert policy.check_host("no-such-host.invalid") == []


def test_an_unset_or_empty_allow_list_allows_nothing_extra() -> None:
    assert AddressPolicy.from_env({}) == AddressPolicy()
    assert AddressPolicy.from_env({"HORA_HTTP_ALLOW": ""}) == AddressPolicy()


def test_a_bad_allow_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HORA_HTTP_ALLOW: 'localhost' is not an IP"):
        AddressPolicy.parse("127.0.0.1,localhost")


@pytest.mark.parametrize(("url", "host", "ip"), [
    ("http://127.0.0.1:8080/x", "127.0.0.1", "loopback address 127.0.0.1"),
    ("http://10.0.0.5/", "10.0.0.5", "private address 10.0.0.5"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254",
     "link-local address 169.254.169.254"),
    ("http://[::1]/", "::1", "loopback address ::1"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1",
     "IPv4-mapped loopback address ::ffff:127.0.0.1"),
    ("http://[fec0::1]/", "fec0::1", "site-local address fec0::1"),
    ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe",
     "NAT64 link-local address 64:ff9b::a9fe:a9fe"),
])
def test_check_fails_permanently_naming_the_address_and_the_setting(url: str, host: str,
                                                                    ip: str) -> None:
    with pytest.raises(Fail) as e:
        asyncio.run(AddressPolicy().check(url))
    assert str(e.value) == (f"target.url: host {host} resolves to {ip}; "
                            "set HORA_HTTP_ALLOW to permit it")


def test_check_passes_a_public_literal_and_an_allowed_loopback() -> None:
    found = asyncio.run(AddressPolicy().check("https://93.184.216.34/"))
    assert found == [ipaddress.ip_address("93.184.216.34")]
    asyncio.run(AddressPolicy.parse("127.0.0.1").check("http://127.0.0.1:9/"))


# -- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    (None, None),
    ("120", 120.0),
    (" 0 ", 0.0),
    ("999999", 86_400.0),  # capped at a day
    ("Tue, 01 Jan 2030 00:02:00 GMT", 120.0),  # the weekday is not checked
    ("Mon, 31 Dec 2029 23:00:00 GMT", 0.0),  # in the past: at once
    ("Sat, 01 Jan 2033 00:00:00 GMT", 86_400.0),
    ("-5", None),
    ("1.5", None),
    ("\u00b2", None),  # a digit to str.isdigit, not to int()
    ("soon", None),
    ("", None),
])
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds
