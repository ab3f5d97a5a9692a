"""The Jinja2 sandbox templates render in, with hora's bounds on work and size (see
``hora.notify.templates``). A module of its own so that importing ``hora.app`` does not
import Jinja2: only checking or rendering a template does."""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from hora.notify.templates import MAX_OUTPUT, MAX_RANGE, MAX_STEPS, MAX_WIDTH

#: A %-format or str.format width/precision of 6+ digits, a ``*`` width or a nested
#: ``{...{`` spec: the ways a short format string asks for a huge output.
_BIG_FORMAT = re.compile(
    r"%[-#0 +]*(?:\d{6,}|\*|\d*\.(?:\d{6,}|\*))|\{[^{}]*:[^{}]*(?:\d{6,}|\{)")
#: Filters whose numeric arguments are sizes of what they build.
_SIZED_FILTERS = ("center", "indent", "wordwrap", "batch", "slice", "truncate")


budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("hora_template_budget")


def _spend(n: int = 1) -> None:
    """One loop step or call of the current render; over ``MAX_STEPS`` ends it."""
    left = budget.get(None)
    if left is None:
        return
    left[0] -= n
    if left[0] < 0:
        raise SecurityError(f"the template does too much work (over {MAX_STEPS} loop steps "
                            "and calls)")


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SecurityError(f"range() of {len(r)} numbers; at most {MAX_RANGE}")
    return r


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every ``{% for %}`` iterates: the loop, one budget step per item."""
    for item in iterable:
        _spend()
        yield item


def _sized(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return 0


def _check_format(spec: object) -> None:
    if isinstance(spec, str) and _BIG_FORMAT.search(spec):
        raise SecurityError("format widths of 6 digits or more, * widths and nested format "
                            "specs are not allowed in templates")


def _check_width(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for v in (*args[1:], *kwargs.values()):
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_WIDTH:
            raise SecurityError(f"a size of {v} in a template; at most {MAX_WIDTH}")


def _bounded_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        _check_width(args, kwargs)
        return fn(*args, **kwargs)

    for attr in ("jinja_pass_arg",):  # keep @pass_context / @pass_environment markers
        if hasattr(fn, attr):
            setattr(call, attr, getattr(fn, attr))
    return call


def _replace(value: Any, old: str, new: str, count: int | None = None) -> Any:
    s = str(value)
    worst = len(s) + (len(s) + 1) * len(new) if old == "" else len(s) // max(len(old), 1) * (
        len(new)) + len(s)
    if worst > MAX_OUTPUT:
        raise SecurityError(f"replace() could make {worst} characters; at most {MAX_OUTPUT}")
    return s.replace(old, new, -1 if count is None else count)


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox with hora's bounds on work and size."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=autoescape,
                         keep_trailing_newline=True)
        self.globals = {"range": _range, "dict": dict, "__hora_loop": _counted}
        for name in _SIZED_FILTERS:
            self.filters[name] = _bounded_filter(self.filters[name])
        self.filters["replace"] = _replace
        fmt = self.filters["format"]

        def format_filter(value: Any, *args: Any, **kwargs: Any) -> Any:
            _check_format(value)
            _check_width((None, *args), kwargs)
            return fmt(value, *args, **kwargs)

        self.filters["format"] = format_filter

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every ``{% for %}`` iterates through ``__hora_loop``, which spends the budget."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name("__hora_loop", "load"), [loop.iter], [], None,
                                   None, lineno=loop.lineno)
        return tree

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``data.items`` is the key ``items`` of JSON data, not the dict's method: template
        authors write JSON's field names, which often are ``items``, ``keys``, ``values``."""
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call(__self, __context: Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        _spend()
        for v in (*args, *kwargs.values()):
            if isinstance(v, (str, list, tuple)) and len(v) > MAX_OUTPUT:
                raise SecurityError(f"an argument of {len(v)} items; at most {MAX_OUTPUT}")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``"{:>999999999}".format(x)``: refused when the method is looked up."""
        if getattr(value, "__name__", None) in ("format", "format_map"):
            _check_format(getattr(value, "__self__", None))
        return super().wrap_str_format(value)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(n, int) and _sized(seq) * n > MAX_OUTPUT:
                    raise SecurityError(f"a repetition of {_sized(seq) * n} items; at most "
                                        f"{MAX_OUTPUT}")
        elif operator_ == "**":
            if isinstance(right, int) and abs(right) > 64 and isinstance(left, int) and abs(
                    left) > 1:
                raise SecurityError("powers above 64 are not allowed in templates")
        elif operator_ == "%":
            _check_format(left)
            args = right if isinstance(right, tuple) else (right,)
            _check_width((None, *args), {})
        elif operator_ == "+" and _sized(left) + _sized(right) > MAX_OUTPUT:
            raise SecurityError(f"a concatenation over {MAX_OUTPUT} items")
        return self.binop_table[operator_](left, right)


_TEXT = _Sandbox(autoescape=False)
_HTML = _Sandbox(autoescape=True)
ENV = {"subject": _TEXT, "text": _TEXT, "html": _HTML}
