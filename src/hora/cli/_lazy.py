"""A root command whose sub-command groups are built when used, not for every ``hora`` call.

typer turns each command function into a click command by reading its signature and
evaluating its annotations: about 40 commands cost ~40 ms, more than everything else hora
adds to ``hora --help``. ``hora jobs list`` needs one group, ``hora --help`` needs none
(only each group's one-line help), so :class:`LazyGroups` builds a group on first use.
Output, errors and "Did you mean" suggestions are those of the eagerly built tree;
``tests/cli/test_cli_package.py`` compares the two.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar

import typer
import typer.main
from typer import _click
from typer.core import TyperGroup


class LazyCommands(MutableMapping[str, _click.Command]):
    """The root's commands: the built ones, then the groups, built on first lookup."""

    def __init__(self, built: MutableMapping[str, _click.Command],
                 groups: dict[str, typer.Typer]) -> None:
        self._built = dict(built)
        self._groups = groups
        self._order = [*built, *(name for name in groups if name not in built)]

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self._built:
            group = typer.main.get_group(self._groups[name])  # KeyError: no such command
            group.name = name
            self._built[name] = group
        return self._built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        if name not in self._order:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._order.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def listing(self) -> dict[str, _click.Command]:
        """For the root's help: each unbuilt group as a stand-in carrying only its help."""
        listed: dict[str, _click.Command] = {}
        for name in self._order:
            if name in self._built:
                listed[name] = self._built[name]
            else:
                info = self._groups[name].info
                listed[name] = TyperGroup(name=name, help=_text(info.help),
                                          short_help=_text(info.short_help),
                                          hidden=bool(_text(info.hidden)))
        return listed


def _text(value: Any) -> Any:
    """A typer setting as given, or None where typer holds a default placeholder."""
    return None if isinstance(value, typer.models.DefaultPlaceholder) else value


class LazyGroups(TyperGroup):
    """A typer root group (``typer.Typer(cls=...)``) with ``lazy_groups`` added on demand."""

    lazy_groups: ClassVar[dict[str, typer.Typer]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands(self.commands, self.lazy_groups)

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        commands = self.commands
        if isinstance(commands, LazyCommands):
            self.commands = commands.listing()
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.commands = commands
