"""Rendering templates in the sandbox: recipient and data in scope, a missing variable is an
error naming it (never a blank), html escaped and text not, internals refused, and the work
of one render bounded (a range bomb, nested loops, recursive macros, size multipliers end
fast). Syntax errors are refused at put, naming the part and the line."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from hora.errors import InvalidNotification, PermanentDeliveryError
from hora.notify.model import Recipient
from hora.notify.templates import (
    MAX_OUTPUT,
    StoredTemplate,
    TemplateRenderError,
    check_template,
    render,
)

ADA = Recipient("u42", timezone="Europe/Paris", locale="fr",
                addresses={"email": "ada@example.com"}, data={"name": "Ada"})


def tpl(text: str = "", *, subject: str = "s", html: str | None = None) -> StoredTemplate:
    return StoredTemplate("t", "welcome", "email", 3, subject, text, html,
                          datetime(2030, 1, 1, tzinfo=UTC))


def fails(text: str, **data: object) -> TemplateRenderError:
    started = time.monotonic()
    with pytest.raises(TemplateRenderError) as caught:
        render(tpl(text), recipient=ADA, data=data)
    assert time.monotonic() - started < 5, "a refused template must be refused fast"
    return caught.value


def test_recipient_data_and_extra_are_in_scope() -> None:
    out = render(tpl("Hi {{ recipient.data.name }} ({{ recipient.id }}, {{ recipient.locale }}"
                     ", {{ recipient.timezone }}): {{ data.report }} {{ unsubscribe_url }}",
                     subject="Your {{ data.report }}\nis ready"),
                 recipient=ADA, data={"report": "Q3"},
                 extra={"unsubscribe_url": "https://x.example/u"})
    assert out.text == "Hi Ada (u42, fr, Europe/Paris): Q3 https://x.example/u"
    assert out.subject == "Your Q3 is ready"  # one line: it becomes a header
    assert out.html is None


def test_digest_items_come_in_through_extra() -> None:
    out = render(tpl("{% for i in items %}- {{ i.title }}\n{% endfor %}"), recipient=ADA,
                 data={}, extra={"items": [{"title": "a"}, {"title": "b"}]})
    assert out.text == "- a\n- b\n"


def test_a_missing_variable_is_an_error_naming_it_not_a_blank() -> None:
    e = fails("Hello {{ data.first_name }}!")
    assert e.variable == "first_name" and e.part == "text"
    assert "first_name" in str(e) and "welcome" in str(e)
    assert isinstance(e, PermanentDeliveryError)  # retrying cannot help
    assert fails("{{ nobody }}").variable == "nobody"
    assert fails("{{ recipient.data.plan }}").variable == "plan"
    with pytest.raises(TemplateRenderError) as caught:
        render(tpl("ok", subject="{{ data.title }}"), recipient=ADA, data={})
    assert caught.value.part == "subject" and caught.value.variable == "title"


def test_html_is_autoescaped_and_text_is_not() -> None:
    out = render(tpl("{{ data.v }}", subject="{{ data.v }}", html="<p>{{ data.v }}</p>"),
                 recipient=ADA, data={"v": "<script>&"})
    assert out.text == "<script>&"
    assert out.subject == "<script>&"
    assert out.html == "<p>&lt;script&gt;&amp;</p>"


@pytest.mark.parametrize("text", [
    "{{ recipient.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ data.__init__.__globals__ }}",
    "{{ data.f.__code__ }}",
])
def test_the_sandbox_refuses_internals(text: str) -> None:
    e = fails(text, f=lambda: 1)
    assert "unsafe" in str(e) or "sandbox" in str(e)


@pytest.mark.parametrize(("text", "says"), [
    ("{% for i in range(10**9) %}x{% endfor %}", "range"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
     "too much work"),
    ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
     "too much work"),
    ("{{ 'x' * 10**9 }}", "repetition"),
    ("{{ 2 ** 10000000 }}", "powers"),
    ("{{ 'x'|center(10**9) }}", "size"),
    ("{{ [1]|batch(10**9, 'x')|list }}", "size"),
    ("{{ '%999999999s'|format('x') }}", "format"),
    ("{{ '%999999999s' % 'x' }}", "format"),
    ("{{ '{:>999999999}'.format('x') }}", "format"),
    ("{{ 'ab'|replace('', 'x' * 1000000) }}", "replace"),
    ("{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}", str(MAX_OUTPUT)),
])
def test_the_work_of_one_render_is_bounded(text: str, says: str) -> None:
    assert says in str(fails(text))


def test_namespace_and_lipsum_are_not_available() -> None:
    # namespace() would let a loop double a string forty times; lipsum(n) builds n words.
    assert fails("{% set ns = namespace(s='x') %}").variable == "namespace"
    assert fails("{{ lipsum(10**9) }}").variable == "lipsum"


def test_ordinary_templates_still_work_within_the_bounds() -> None:
    out = render(tpl("{% for i in range(3) %}{{ loop.index }}{% endfor %} "
                     "{{ '%05d'|format(data.n) }} {{ '{:>6}'.format(data.n) }} "
                     "{{ data.things|join(', ') }} {{ data.total * 2 }} {{ 'ab' * 3 }} "
                     "order 1234567"),
                 recipient=ADA, data={"n": 42, "things": ["a", "b"], "total": 123456789})
    assert out.text == "123 00042     42 a, b 246913578 ababab order 1234567"


@pytest.mark.parametrize(("part", "kwargs"), [
    ("subject", {"subject": "Hi {{ name", "text": "", "html": None}),
    ("text", {"subject": "", "text": "line 1\n{% for x in y %}", "html": None}),
    ("html", {"subject": "", "text": "t", "html": "<p>\n\n{% if %}</p>"}),
])
def test_a_syntax_error_names_the_part_and_line(part: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidNotification) as caught:
        check_template(kwargs["subject"], kwargs["text"], kwargs["html"])
    assert caught.value.field == f"template.{part}"
    assert "line " in str(caught.value)
    if part == "html":
        assert "line 3" in str(caught.value)


def test_template_parts_are_bounded_and_storable() -> None:
    with pytest.raises(InvalidNotification) as caught:
        check_template("s", "x" * (64 * 1024 + 1), None)
    assert caught.value.field == "template.text"
    with pytest.raises(InvalidNotification) as caught:
        check_template("s\x00", "t", None)
    assert caught.value.field == "template.subject"
    with pytest.raises(InvalidNotification) as caught:
        check_template("", "", None)
    assert caught.value.field == "template"
    assert check_template("s", "t", "<b>h</b>") == ("s", "t", "<b>h</b>")


def test_json_field_names_win_over_dict_methods() -> None:
    out = render(tpl("{{ data.items|join(',') }} {{ data.keys }} {{ data.get }}"),
                 recipient=ADA, data={"items": ["a", "b"], "keys": 2, "get": "g"})
    assert out.text == "a,b 2 g"
