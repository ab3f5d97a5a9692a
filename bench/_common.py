"""Shared set-up for the benchmarks: a fresh database of either kind, and medians."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--postgres-url", default=os.environ.get("HORA_TEST_POSTGRES_URL", DEFAULT_PG))
    p.add_argument("--runs", type=int, default=3, help="repeat and report the median")
    return p


@contextmanager
def fresh_database(store: str, postgres_url: str) -> Iterator[str]:
    """A database URL nobody else uses, removed afterwards."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{os.path.join(d, 'bench.db')}"
        return
    import psycopg

    schema = f"hora_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)
