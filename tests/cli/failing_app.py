"""An app for the CLI tests: ``hora worker --app tests.cli.failing_app:app``.

``cli.boom`` always fails (two attempts, no backoff) and ends in the dead-letter queue;
``cli.ok`` succeeds. The database comes from the worker's ``--database-url``.
"""

from __future__ import annotations

from hora import Hora, RetryPolicy

app = Hora()
not_an_app = 42

NO_WAIT = RetryPolicy(max_attempts=2, backoff="fixed", base=0.0, jitter="none")


def boom(n: int) -> None:
    raise RuntimeError(f"boom {n}")


def ok(n: int) -> int:
    return n * 2


app.task(boom, name="cli.boom", retry=NO_WAIT)
app.task(ok, name="cli.ok")
