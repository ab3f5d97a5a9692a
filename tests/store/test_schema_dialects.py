"""Both dialects' migrations build the same schema, modulo types.

A fresh SQLite file and a fresh PostgreSQL schema are migrated, then each database's own
catalogue is read (SQLite's pragmas and ``sqlite_master``; PostgreSQL's
``information_schema``, ``pg_index`` and ``pg_constraint``) into one neutral form: tables,
columns in order with nullability, indexes (name, columns, unique, partial), primary keys,
UNIQUE constraints and CHECK constraints. Types are left out: they differ on purpose (TEXT and
jsonb, INTEGER and timestamptz). A CHECK is compared by what it constrains -- the columns it
names and the literals it compares them with -- since each database prints expressions its own
way (``BETWEEN 1 AND 200`` against ``length(x) >= 1 AND length(x) <= 200``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from hora.store import open_store
from tests.conftest import fresh_pg_schema

#: A CHECK that only emulates a type SQLite lacks (booleans as 0/1): PostgreSQL's column type
#: says the same, so it is not drift.
_BOOLEAN_CHECK = re.compile(r"^\s*(\w+)\s+IN\s*\(\s*0\s*,\s*1\s*\)\s*$", re.IGNORECASE)
_STRING = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")
_WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass
class Schema:
    #: table -> [(column, not null)] in order
    columns: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    #: (table, index name) -> (columns, unique, partial)
    indexes: dict[tuple[str, str], tuple[tuple[str, ...], bool, bool]] = field(
        default_factory=dict)
    primary_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    uniques: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    #: (table, columns named, strings, numbers), each once per table
    checks: set[tuple[str, frozenset[str], frozenset[str], frozenset[str]]] = field(
        default_factory=set)


def _check_key(table: str, expr: str, columns: set[str],
               ) -> tuple[str, frozenset[str], frozenset[str], frozenset[str]]:
    strings = frozenset(s.replace("''", "'") for s in _STRING.findall(expr))
    bare = _STRING.sub("''", expr)
    named = frozenset(w for w in _WORD.findall(bare) if w in columns)
    numbers = frozenset(str(float(n)) for n in _NUMBER.findall(bare))
    return table, named, strings, numbers


def _sqlite_checks(create_sql: str) -> Iterator[str]:
    """The body of every CHECK (...) in a CREATE TABLE statement (comments removed)."""
    text = re.sub(r"--[^\n]*", "", create_sql)
    for m in re.finditer(r"\bCHECK\s*\(", text, re.IGNORECASE):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[m.end():i - 1]


def sqlite_schema(path: Path) -> Schema:
    s = Schema()
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'hora_%' "
            "ORDER BY name")]
        for t in tables:
            info = conn.execute(f"PRAGMA table_info({t})").fetchall()
            pk = tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
            s.primary_keys[t] = pk
            # A PRIMARY KEY column is NOT NULL in PostgreSQL; SQLite only says so if told.
            s.columns[t] = [(r[1], bool(r[3]) or r[1] in pk) for r in info]
            names = {r[1] for r in info}
            for _, name, unique, origin, partial in conn.execute(f"PRAGMA index_list({t})"):
                cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})"))
                if origin == "pk":
                    continue
                if origin == "u":  # a UNIQUE constraint, backed by an automatic index
                    s.uniques.add((t, cols))
                    continue
                s.indexes[(t, name)] = (cols, bool(unique), bool(partial))
            (create_sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (t,),
            ).fetchone()
            for expr in _sqlite_checks(create_sql):
                if not _BOOLEAN_CHECK.match(expr):
                    s.checks.add(_check_key(t, expr, names))
    finally:
        conn.close()
    return s


def postgres_schema(url: str) -> Schema:
    s = Schema()
    with psycopg.connect(url, autocommit=True) as conn:
        (schema,) = conn.execute("SELECT current_schema()").fetchone()  # type: ignore[misc]
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name LIKE 'hora%%' ORDER BY table_name", (schema,))]
        for t in tables:
            cols = conn.execute(
                "SELECT column_name, is_nullable = 'NO' FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, t)).fetchall()
            s.columns[t] = [(c, bool(nn)) for c, nn in cols]
            names = {c for c, _ in cols}
            rel = f"{schema}.{t}"
            for name, unique, primary, partial, keys in conn.execute(
                    "SELECT i.relname, x.indisunique, x.indisprimary, x.indpred IS NOT NULL, "
                    "  array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o) "
                    "        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n "
                    "        ORDER BY k.o) "
                    "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                    "WHERE x.indrelid = %s::regclass", (rel,)):
                backs_constraint = conn.execute(
                    "SELECT 1 FROM pg_constraint WHERE conindid = "
                    "(SELECT oid FROM pg_class WHERE relname = %s AND relnamespace = "
                    " %s::regnamespace)", (name, schema)).fetchone()
                if primary or backs_constraint:
                    continue
                s.indexes[(t, name)] = (tuple(keys), bool(unique), bool(partial))
            for kind, cols_, definition in conn.execute(
                    "SELECT contype, array(SELECT a.attname FROM unnest(c.conkey) "
                    "  WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.conrelid "
                    "  AND a.attnum = k.n ORDER BY k.o), pg_get_constraintdef(c.oid) "
                    "FROM pg_constraint c WHERE c.conrelid = %s::regclass", (rel,)):
                if kind == "p":
                    s.primary_keys[t] = tuple(cols_)
                elif kind == "u":
                    s.uniques.add((t, tuple(cols_)))
                elif kind == "c":
                    m = re.fullmatch(r"CHECK \((.*)\)", definition, re.DOTALL)
                    assert m is not None, definition
                    s.checks.add(_check_key(t, m.group(1), names))
            s.primary_keys.setdefault(t, ())
    return s


@pytest.fixture
def schemas(tmp_path: Path) -> Iterator[tuple[Schema, Schema]]:
    sqlite_path = tmp_path / "hora.db"
    open_store(f"sqlite:///{sqlite_path}").close()
    with fresh_pg_schema() as url:
        open_store(url).close()
        yield sqlite_schema(sqlite_path), postgres_schema(url)


def test_tables_and_columns_agree(schemas: tuple[Schema, Schema]) -> None:
    lite, pg = schemas
    assert sorted(lite.columns) == sorted(pg.columns)
    for table in lite.columns:
        assert lite.columns[table] == pg.columns[table], table


def test_indexes_agree(schemas: tuple[Schema, Schema]) -> None:
    lite, pg = schemas
    assert lite.indexes == pg.indexes


def test_constraints_agree(schemas: tuple[Schema, Schema]) -> None:
    lite, pg = schemas
    assert lite.primary_keys == pg.primary_keys
    assert lite.uniques == pg.uniques
    assert lite.checks == pg.checks


def test_the_readers_see_what_they_compare(schemas: tuple[Schema, Schema]) -> None:
    """Guards against a reader that silently reads nothing (and so finds no drift)."""
    for s in schemas:
        assert {"hora_jobs", "hora_schedules", "hora_workflows", "hora_locks"} <= set(s.columns)
        assert s.indexes[("hora_jobs", "hora_jobs_idempotency")] == (
            ("tenant_id", "idempotency_key"), True, True)
        assert s.primary_keys["hora_workflow_history"] == ("tenant_id", "workflow_id", "seq")
        assert ("hora_api_keys", ("key_hash",)) in s.uniques
        assert ("hora_schedules", frozenset({"state"}), frozenset({"active", "paused"}),
                frozenset()) in s.checks
        assert len(s.checks) > 30
