"""``app.templates`` on both stores: which template a send on a channel uses (its own, else
``*``; a named version), previews, and bad input naming the field."""

from __future__ import annotations

import pytest

from hora import Hora
from hora.errors import InvalidNotification, NotFound
from hora.notify.model import Recipient
from hora.notify.templates import TemplateRenderError


def test_resolve_prefers_the_channels_own_then_any(app: Hora) -> None:
    t = app.templates
    assert t.put("r", text="any v1") == 1
    assert t.put("r", text="any v2") == 2
    assert t.resolve("r", "email").text == "any v2"
    assert t.resolve("r", "email", 1).text == "any v1"  # no email template: * version 1
    assert t.put("r", channel="email", text="email v1") == 1
    assert t.resolve("r", "email").text == "email v1"
    assert t.resolve("r", "inapp").text == "any v2"
    # email has templates of its own: a version it lacks is not taken from *
    with pytest.raises(NotFound):
        t.resolve("r", "email", 2)
    with pytest.raises(NotFound):
        t.resolve("nope", "email")
    with pytest.raises(NotFound):
        app.for_tenant("other").templates.resolve("r", "email")
    r = Recipient("u1", data={"name": "Ada"})
    out = t.render("r", "inapp", recipient=r, data={})
    assert out.text == "any v2"
    t.put("r", channel="webhook", text="{{ data.missing }}")
    with pytest.raises(TemplateRenderError) as caught:
        t.render("r", "webhook", recipient=r, data={})
    assert caught.value.variable == "missing"


def test_bad_input_names_the_field(app: Hora) -> None:
    t = app.templates
    for call, field in (
            (lambda: t.put("bad name!", text="x"), "name"),
            (lambda: t.put("n", channel="sms", text="x"), "channel"),
            (lambda: t.put("n", text=3), "template.text"),  # type: ignore[arg-type]
            (lambda: t.get("n", "email", 0), "version"),
            (lambda: t.get("n", "email", 2**40), "version"),
            (lambda: t.list(limit=0), "limit"),
            (lambda: t.list(cursor="x"), "cursor"),
            (lambda: app.inbox.mark("u1", [], "read"), "ids"),
            (lambda: app.inbox.mark("u1", ["a"], "deleted"), "action"),
            (lambda: app.inbox.list("u1", status="new"), "status"),
            (lambda: app.inbox.list("u1", cursor="nope"), "cursor")):
        with pytest.raises(InvalidNotification) as caught:
            call()
        assert caught.value.field == field
    assert t.list().items == []  # nothing half-written


def test_preview_names_the_missing_variable_and_returns_the_template_used(app: Hora) -> None:
    app.templates.put("p", text="{{ recipient.data.name }}: {{ data.amount }}")
    used, out = app.templates.preview("p", "email", recipient=Recipient(
        "u1", data={"name": "Ada"}), data={"amount": 3})
    assert (used.channel, used.version, out.text) == ("*", 1, "Ada: 3")
    with pytest.raises(InvalidNotification) as caught:
        app.templates.preview("p", "email", recipient=Recipient("u1", data={"name": "A"}),
                              data={})
    assert caught.value.field == "data.amount"
