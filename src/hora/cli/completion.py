"""``hora completion SHELL``: the shell's completion script for ``hora``.

A command rather than typer's ``--install-completion``: that option would cost every
``hora --help`` the import of typer's completion machinery. The script the shell sources
calls ``hora`` back with ``_HORA_COMPLETE`` set, and ``hora.cli.main`` sets up typer's
completion only then (:func:`init_if_completing`).
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer

PROG = "hora"
COMPLETE_VAR = "_HORA_COMPLETE"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(shell: Annotated[Shell, typer.Argument(
        help="bash, zsh or fish.", show_default=False)]) -> None:
    """Print the shell completion script for bash, zsh or fish.

    bash: eval "$(hora completion bash)" in ~/.bashrc; zsh: the same with zsh in ~/.zshrc;
    fish: hora completion fish > ~/.config/fish/completions/hora.fish
    """
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR,
                                     shell=shell.value))


def init_if_completing() -> None:
    """Register typer's completion classes when the shell asks ``hora`` for completions."""
    if COMPLETE_VAR in os.environ:
        from typer._completion_classes import completion_init

        completion_init()
