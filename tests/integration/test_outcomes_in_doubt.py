"""The worker's verdict on an outcome whose write failed and whose retry finds the lease
gone: read the job back; "discarded" only when the outcome really is not there. Real
stores, both of them; the end-to-end case (a COMMIT whose answer a proxy drops) is in
``test_pg_outage.py``."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from hora import Hora
from hora.store import Outcome


async def verdict(app: Hora, *, committed: bool, in_doubt: bool) -> dict[str, int]:
    """Claim a job as worker ``w1``, then either write its outcome (a commit whose
    acknowledgement was lost) or let its lease expire and the job be rescued; finally
    write the outcome again as the worker's flush retry would."""
    job = app.enqueue("doubt.task", {})
    store, now = app.store, app.clock.now()
    started, _ = store.claim_jobs(owner="w1", queues=["default"], tasks=None, now=now,
                                  lease_until=now + timedelta(seconds=30), limit=1)
    assert [j.id for j in started] == [job.id]
    outcome = Outcome(job_id=job.id, attempt=started[0].attempt, owner="w1",
                      state="succeeded", outcome="succeeded", started_at=now,
                      result_json="1")
    if committed:
        assert store.finish_jobs([outcome], now) == [job.id]
    else:
        assert store.rescue_expired(now + timedelta(seconds=60)) == [job.id]
    worker = app.worker(worker_id="w1")
    worker._loop = asyncio.get_running_loop()
    worker._outcome_tenants[job.id] = job.tenant_id
    if in_doubt:
        worker._in_doubt.add((job.id, outcome.attempt))
    await worker._write_outcomes([outcome])
    assert not worker._in_doubt and not worker._outcome_tenants
    return worker.stats


@pytest.mark.parametrize(("committed", "in_doubt", "discarded"), [
    (True, True, False),  # written after all: nothing alarming
    (False, True, True),  # really not written, and the lease is gone
    (False, False, True),  # no failed write before: the lease was simply lost
])
def test_an_outcome_in_doubt_is_read_back_before_it_is_called_discarded(
        database_url: str, caplog: pytest.LogCaptureFixture, committed: bool,
        in_doubt: bool, discarded: bool) -> None:
    app = Hora(database_url)
    try:
        with caplog.at_level(logging.DEBUG, logger="hora.worker"):
            stats = asyncio.run(verdict(app, committed=committed, in_doubt=in_doubt))
    finally:
        app.close()
    warned = [r for r in caplog.records
              if r.levelno >= logging.WARNING and "result is discarded" in r.getMessage()]
    assert len(warned) == int(discarded)
    assert stats["lost"] == int(discarded)
    confirmed = [r for r in caplog.records
                 if "was written before the connection dropped" in r.getMessage()]
    assert len(confirmed) == int(not discarded)
