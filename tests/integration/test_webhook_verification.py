"""The Standard Webhooks verification docs/api.md shows, run as written on what a real HTTP
receiver on 127.0.0.1 got: a JSON body, a text body and an empty body (a GET)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.integration.test_http_targets import call
from tests.receiver import Receiver

SECRET = "whsec_" + "A" * 32  # the secret tests.integration.test_http_targets.call signs with
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_verifier() -> Callable[[str, bytes, dict[str, str]], bytes]:
    """The Python block of docs/api.md that defines ``verify_hora_webhook``, executed."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    [code] = [b for b in blocks if "def verify_hora_webhook" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # our own documentation, as written
    verifier: Callable[[str, bytes, dict[str, str]], bytes] = namespace["verify_hora_webhook"]
    return verifier


def test_the_documented_verification_accepts_json_text_and_empty_bodies(
        receiver: Receiver) -> None:
    verify_hora_webhook = documented_verifier()
    now = datetime.now(UTC)  # the package checks the timestamp against the wall clock
    call({"url": receiver.url("/json"), "body": {"order": 42, "name": "Zoë"}}, now=now)
    call({"url": receiver.url("/text"), "method": "PUT", "body": "plain text, not JSON"},
         now=now)
    call({"url": receiver.url("/empty"), "method": "GET"}, now=now)
    json_body, text, empty = receiver.requests
    assert (json_body.path, text.path, empty.path) == ("/json", "/text", "/empty")
    assert empty.body == b"" and text.body == b"plain text, not JSON"
    for seen in (json_body, text, empty):
        assert verify_hora_webhook(SECRET, seen.body, seen.headers) == seen.body
        # The same call without json_parse=False is what used to be documented: it only
        # works on JSON bodies.
        if seen is not json_body:
            with pytest.raises(ValueError):
                Webhook(SECRET).verify(seen.body, seen.headers)
        # Tampering, or another secret, is refused.
        with pytest.raises(WebhookVerificationError):
            verify_hora_webhook(SECRET, seen.body + b" ", seen.headers)
        with pytest.raises(WebhookVerificationError):
            verify_hora_webhook("whsec_" + "B" * 32, seen.body, seen.headers)
