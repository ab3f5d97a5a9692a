"""``python -m hora.cli``: the same as the ``hora`` command."""

from hora.cli import main

main()
