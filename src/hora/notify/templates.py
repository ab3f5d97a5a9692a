"""Notification templates: stored per tenant, name and channel, versioned, rendered in a
Jinja2 sandbox (docs/notifications.md, "Templates").

A template has a ``subject``, a ``text`` body and an optional ``html`` body. Every put adds
a version; a send takes the latest unless it names one. A template stored for channel
``*`` serves every channel that has none of its own (``TemplateService.resolve``).

Rendering (``render``) sees ``recipient`` (id, timezone, locale, addresses, data) and
``data`` (the notification's), plus what the caller adds (``unsubscribe_url``, a digest's
``items``). A variable the template uses but nobody gave is an error
(``TemplateRenderError``, a permanent delivery error naming the variable), never a blank;
a template that does not parse is refused when it is put (``InvalidNotification`` naming
``template.subject``/``template.text``/``template.html`` and the line).

Templates are tenant input run by the workers, so the work one render may do is bounded:
the sandbox refuses internals (``__class__``, ``mro``...), ``range`` stops at
``MAX_RANGE``, every loop step and call spends one unit of a ``MAX_STEPS`` budget (so
nested loops and recursive macros end fast), operators and filters that multiply sizes
refuse results over ``MAX_OUTPUT``, and the output stops at ``MAX_OUTPUT`` characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from hora.clock import Clock
from hora.errors import InvalidNotification, NotFound, PermanentDeliveryError
from hora.models import Page
from hora.notify.model import (
    CHANNELS,
    MAX_ENTRIES,
    MAX_LOCALE,
    Recipient,
    Rendered,
    check_channel,
    check_name,
    check_timezone,
)
from hora.store import Store
from hora.store.notify_rows import StoredTemplate

__all__ = ["ANY_CHANNEL", "MAX_OUTPUT", "MAX_RANGE", "MAX_STEPS", "MAX_TEMPLATE_BYTES",
           "StoredTemplate", "TemplateRenderError", "TemplateService", "check_template",
           "preview_recipient", "recipient_scope", "render", "rendered_dict",
           "template_dict"]

#: The channel of a template that serves every channel without one of its own.
ANY_CHANNEL = "*"
#: The largest subject, text or html of a template (UTF-8 bytes).
MAX_TEMPLATE_BYTES = 64 * 1024
#: The most characters one rendered part may have.
MAX_OUTPUT = 1024 * 1024
#: The most numbers ``range`` gives.
MAX_RANGE = 10_000
#: The loop steps plus calls one render may make (a template is not a program).
MAX_STEPS = 200_000
#: The largest width, count or size a filter such as ``center`` or ``batch`` accepts.
MAX_WIDTH = 10_000
#: Versions one (name, channel) keeps at most, and (name, channel) pairs per tenant.
MAX_VERSIONS = 1000
MAX_TEMPLATES = 10_000
#: The largest version number (a database integer).
MAX_INT = 2**31 - 1
#: The most templates one listing returns.
MAX_PAGE = 500



class TemplateRenderError(PermanentDeliveryError):
    """A template could not render for this recipient and data: a variable it uses is
    missing (``variable`` names it), the sandbox refused something, or it did too much work.
    Permanent: the same data fails the same way on every retry. ``part`` is ``subject``,
    ``text`` or ``html``."""

    def __init__(self, message: str, *, part: str | None = None,
                 variable: str | None = None) -> None:
        super().__init__(message)
        self.part = part
        self.variable = variable


# -- checking and rendering ----------------------------------------------------------------


def check_template(subject: object, text: object, html: object) -> tuple[str, str, str | None]:
    """Refuse, naming ``template.<part>`` and the line, a template part that is not a
    string, is over ``MAX_TEMPLATE_BYTES``, cannot be stored, or does not parse."""
    out: dict[str, str | None] = {}
    for part, value in (("subject", subject), ("text", text), ("html", html)):
        what = f"template.{part}"
        if value is None and part == "html":
            out[part] = None
            continue
        if not isinstance(value, str):
            raise InvalidNotification("must be a string", field=what)
        try:
            size = len(value.encode())
        except UnicodeEncodeError:
            raise InvalidNotification("contains an unpaired surrogate", field=what) from None
        if size > MAX_TEMPLATE_BYTES:
            raise InvalidNotification(f"{size} bytes; at most {MAX_TEMPLATE_BYTES}", field=what)
        if "\x00" in value:
            raise InvalidNotification("contains a NUL character", field=what)
        from jinja2 import TemplateSyntaxError

        from hora.notify._sandbox import ENV

        try:
            ENV[part].parse(value)
        except TemplateSyntaxError as e:
            raise InvalidNotification(f"line {e.lineno}: {e.message}", field=what) from None
        out[part] = value
    if not out["subject"] and not out["text"] and not out["html"]:
        raise InvalidNotification("a template needs a subject, a text or an html body",
                                  field="template")
    assert out["subject"] is not None and out["text"] is not None
    return out["subject"], out["text"], out["html"]


def recipient_scope(recipient: Recipient) -> dict[str, Any]:
    """What a template sees as ``recipient``: plain values, not the record's methods."""
    return {"id": recipient.id, "timezone": recipient.timezone, "locale": recipient.locale,
            "addresses": dict(recipient.addresses), "data": dict(recipient.data)}


_UNDEFINED = (re.compile(r"'([^']+)' is undefined"),
              re.compile(r"has no attribute '([^']+)'"),
              re.compile(r"has no element '?([^']+?)'?$"))


def _variable(message: str) -> str | None:
    for pattern in _UNDEFINED:
        m = pattern.search(message)
        if m:
            return m.group(1)
    return None


def _render_part(template: StoredTemplate, part: str, source: str,
                 scope: Mapping[str, Any]) -> str:
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError, TemplateError

    from hora.notify._sandbox import ENV, budget

    where = f"template {template.name!r} v{template.version} ({template.channel}) {part}"
    token = budget.set([MAX_STEPS])
    try:
        chunks: list[str] = []
        size = 0
        for chunk in ENV[part].from_string(source).generate(scope):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateRenderError(f"{where}: renders over {MAX_OUTPUT} characters",
                                          part=part)
            chunks.append(chunk)
        return "".join(chunks)
    except UndefinedError as e:
        name = _variable(e.message or "")
        raise TemplateRenderError(f"{where}: {e.message} (missing variable "
                                  f"{name or '?'})", part=part, variable=name) from None
    except SecurityError as e:
        raise TemplateRenderError(f"{where}: refused by the sandbox: {e}", part=part) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError,
            RecursionError) as e:
        raise TemplateRenderError(f"{where}: {type(e).__name__}: {e}", part=part) from None
    finally:
        budget.reset(token)


def render(template: StoredTemplate, *, recipient: Recipient, data: Mapping[str, Any],
           extra: Mapping[str, Any] | None = None) -> Rendered:
    """Render one template for one recipient: pure (no store, no clock). ``extra`` adds
    names to the scope (``unsubscribe_url``, a digest's ``items``); ``recipient`` and
    ``data`` win over them. The subject comes out on one line (it becomes a header)."""
    scope: dict[str, Any] = {**(extra or {}), "recipient": recipient_scope(recipient),
                             "data": dict(data)}
    subject = _render_part(template, "subject", template.subject, scope)
    text = _render_part(template, "text", template.text, scope)
    html = (None if template.html is None
            else _render_part(template, "html", template.html, scope))
    return Rendered(subject=" ".join(subject.split()), text=text, html=html)


def preview_recipient(value: object, tenant_id: str) -> Recipient:
    """The recipient a preview renders for, from ``{"id", "timezone", "locale",
    "addresses", "data"}`` (other fields of a recipient are ignored: a template does not
    see them); each bad field named as ``recipient.<field>``."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidNotification("must be an object", field="recipient")
    rid = check_name(value.get("id", "preview"), "recipient.id")
    tz = check_timezone(value.get("timezone", "UTC"), "recipient.timezone")
    locale = value.get("locale", "en")
    if not isinstance(locale, str) or not 0 < len(locale) <= MAX_LOCALE:
        raise InvalidNotification(f"must be a locale tag of 1-{MAX_LOCALE} characters",
                                  field="recipient.locale")
    addresses = value.get("addresses") or {}
    if not isinstance(addresses, Mapping) or len(addresses) > MAX_ENTRIES or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in addresses.items()):
        raise InvalidNotification(f"must map at most {MAX_ENTRIES} channels to addresses",
                                  field="recipient.addresses")
    data = value.get("data") or {}
    if not isinstance(data, Mapping):
        raise InvalidNotification("must be an object", field="recipient.data")
    return Recipient(rid, tenant_id=tenant_id, timezone=tz, locale=locale,
                     addresses=dict(addresses), data=dict(data))


def template_dict(t: StoredTemplate) -> dict[str, Any]:
    """A template as the HTTP API and the CLI show it."""
    return {"name": t.name, "channel": t.channel, "version": t.version, "subject": t.subject,
            "text": t.text, "html": t.html,
            "created_at": t.created_at.astimezone(UTC).isoformat()}


def rendered_dict(r: Rendered) -> dict[str, Any]:
    return {"subject": r.subject, "text": r.text, "html": r.html}


# -- the service ---------------------------------------------------------------------------


def _check_template_channel(channel: object) -> str:
    return ANY_CHANNEL if channel == ANY_CHANNEL else check_channel(channel)


def _check_version(version: object) -> int | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_INT:
        raise InvalidNotification(f"{version!r} is not a version (1, 2, ...)", field="version")
    return version


class TemplateService:
    """``app.templates``: the tenant's notification templates."""

    def __init__(self, *, store: Callable[[], Store], clock: Clock, tenant_id: str) -> None:
        self._store = store
        self.clock = clock
        self.tenant_id = tenant_id

    def put(self, name: str, *, channel: str = ANY_CHANNEL, subject: str = "",
            text: str = "", html: str | None = None) -> int:
        """Store a new version of template ``name`` for ``channel`` (``*``: any channel
        without its own) and return its number. Refused, naming the field, if a part does not
        parse (``template.subject``/``template.text``/``template.html``, with the line)."""
        check_name(name, "name")
        channel = _check_template_channel(channel)
        subject, text, html = check_template(subject, text, html)
        store = self._store()
        versions = store.count_templates(self.tenant_id, name, channel)
        if versions >= MAX_VERSIONS:
            raise InvalidNotification(f"template {name!r} ({channel}) has {versions} versions, "
                                      "the most it may keep; delete it first", field="name")
        if not versions and store.count_templates(self.tenant_id) >= MAX_TEMPLATES:
            raise InvalidNotification(f"the tenant has {MAX_TEMPLATES} templates, the most "
                                      "it may; delete one first", field="name")
        return store.put_template(self.tenant_id, name, channel, subject, text, html,
                                  self.clock.now())

    def get(self, name: str, channel: str = ANY_CHANNEL,
            version: int | None = None) -> StoredTemplate:
        """That version of template ``name`` of exactly ``channel`` (the latest when
        ``version`` is None); NotFound when there is none."""
        check_name(name, "name")
        channel = _check_template_channel(channel)
        found = self._store().get_template(self.tenant_id, name, channel,
                                           _check_version(version))
        if found is None:
            which = "" if version is None else f" version {version}"
            raise NotFound(f"no template {name!r}{which} for channel {channel!r}")
        return found

    def resolve(self, name: str, channel: str, version: int | None = None) -> StoredTemplate:
        """The template a send of ``name`` on ``channel`` uses: the channel's own if it has
        one (of any version), else the ``*`` template; NotFound when neither exists."""
        check_name(name, "template")
        channel = _check_template_channel(channel)
        version = _check_version(version)
        store = self._store()
        own = store.get_template(self.tenant_id, name, channel, version)
        if own is not None:
            return own
        if channel != ANY_CHANNEL and (
                version is None or store.get_template(self.tenant_id, name, channel) is None):
            found = store.get_template(self.tenant_id, name, ANY_CHANNEL, version)
            if found is not None:
                return found
        which = "" if version is None else f" version {version}"
        raise NotFound(f"no template {name!r}{which} for channel {channel!r}"
                       + ("" if channel == ANY_CHANNEL else " nor for any channel ('*')"))

    def render(self, name: str, channel: str, *, recipient: Recipient,
               data: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
               version: int | None = None) -> Rendered:
        """Resolve and render (``resolve`` then ``render``): what a delivery does.
        Raises NotFound or TemplateRenderError (permanent)."""
        return render(self.resolve(name, channel, version), recipient=recipient, data=data,
                      extra=extra)

    def preview(self, name: str, channel: str, *, recipient: Recipient,
                data: Mapping[str, Any],
                version: int | None = None) -> tuple[StoredTemplate, Rendered]:
        """(the template a send would use, what it renders) for a person trying a template
        out: a render error is their input's fault, so it is InvalidNotification naming
        ``data.<variable>`` (or the template's part)."""
        template = self.resolve(name, channel, version)
        try:
            return template, render(template, recipient=recipient, data=data, extra={
                "unsubscribe_url": "https://example.invalid/unsubscribe"})
        except TemplateRenderError as e:
            field = f"data.{e.variable}" if e.variable else f"template.{e.part or 'text'}"
            raise InvalidNotification(str(e), field=field) from None

    def delete(self, name: str, channel: str | None = None) -> int:
        """Delete every version of ``name`` for ``channel``, or for every channel when
        None; returns how many versions went (0: there was none)."""
        check_name(name, "name")
        if channel is not None:
            channel = _check_template_channel(channel)
        return self._store().delete_template(self.tenant_id, name, channel)

    # last in the class: below it, ``list`` names this method
    def list(self, *, cursor: str | None = None, limit: int = 100) -> Page[StoredTemplate]:
        """The latest version of each of the tenant's templates, by name then channel; pass
        ``next_cursor`` back for the next page."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidNotification(f"must be 1-{MAX_PAGE}", field="limit")
        after = None
        if cursor is not None:
            channel, sep, name = cursor.partition(":")  # a channel has no ':'
            if not sep or not name or not channel:
                raise InvalidNotification("not a cursor this listing gave (next_cursor)",
                                          field="cursor")
            after = (name, channel)
        items = self._store().list_templates(self.tenant_id, after=after, limit=limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return Page(items=items, next_cursor=f"{items[-1].channel}:{items[-1].name}"
                    if more else None)


#: The channels a template may be stored for.
TEMPLATE_CHANNELS = (ANY_CHANNEL, *CHANNELS)
