"""Named SQL queries and numbered migrations, read once from ``store/sql/<dialect>/``.

Keeping SQL in .sql files lets a reviewer read the queries as queries; ``-- name: x`` starts
query ``x`` and runs to the next name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_(\w+)\.sql$")


_QUERY_FILE = re.compile(r"^queries(_\w+)?\.sql$")


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """Every named query of the dialect: ``queries.sql`` plus one ``queries_<aggregate>.sql``
    per aggregate that keeps its SQL apart (so two features never edit one long file). A name
    defined twice is an error, not a silent override."""
    folder = resources.files("hora.store").joinpath("sql", dialect)
    files = sorted(e.name for e in folder.iterdir() if _QUERY_FILE.match(e.name))
    queries: dict[str, str] = {}
    for file in files:
        parts = _NAME.split(folder.joinpath(file).read_text())
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"{dialect} query {name!r} is defined twice ({file})")
            lines = [ln for ln in body.strip().splitlines()
                     if not ln.lstrip().startswith("--")]
            queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    folder = resources.files("hora.store").joinpath("sql", dialect)
    found = []
    for entry in folder.iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return tuple(found)
