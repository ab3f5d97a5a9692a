"""``app.aio`` is typed: ``mypy --strict`` sees what ``await app.aio.get_job(...)`` returns
(a ``Job``, not ``Any``), and refuses an argument the sync method would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = '''
from typing import assert_type
from hora import Hora, Job, LeaderElection
from hora.locks import Lease
from hora.models import Page, Schedule

async def use(app: Hora) -> None:
    job = await app.aio.enqueue("t", {"a": 1})
    assert_type(job, Job)
    assert_type(await app.aio.get_job(job.id), Job)
    assert_type(await app.aio.list_jobs(limit=5), Page[Job])
    assert_type(await app.aio.get_schedule("s"), Schedule)
    async with app.aio.lock("n") as lease:
        assert_type(lease, Lease)
    assert_type(app.get_job(job.id), Job)
    assert_type(app.create_schedule("t", trigger="* * * * *"), Schedule)
    LeaderElection(app, "leader")  # the app, or app.locks, is a candidate's host
    LeaderElection(app.locks, "leader")
'''


@pytest.mark.slow
def test_mypy_strict_sees_real_types_through_app_aio(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(SNIPPET)
    out, err, status = mypy_api.run([
        "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(good)])
    assert status == 0, out + err
    bad = tmp_path / "bad.py"
    bad.write_text("from hora import Hora\n"
                   "async def use(app: Hora) -> None:\n"
                   "    await app.aio.get_job(42)\n")
    out, _err, status = mypy_api.run([
        "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(bad)])
    assert status == 1 and 'incompatible type "int"' in out, out
