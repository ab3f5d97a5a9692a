"""A worker process for the shared-limit test: serves ``send`` (one shared ``20/s`` limit,
named ``smtp``) until no job is left unfinished, then exits.

    python -m tests.integration.flow_proc DATABASE_URL [DEADLINE_SECONDS]
"""

from __future__ import annotations

import asyncio
import sys
import time

from hora import Hora, RateLimit

RATE = "20/s"
#: The strict cap: at most 20 starts in any second, whoever starts them.
BURST = 1


def build_app(url: str) -> Hora:
    app = Hora(url)

    @app.task(name="send", rate_limit=RateLimit(RATE, name="smtp", burst=BURST))
    def send(n: int) -> int:
        return n

    return app


async def main(url: str, deadline: float) -> None:
    app = build_app(url)
    # Polling often: the worker whose claim pushed the backlog wakes on its slots, and the
    # others must get a chance at them for the limit to be shared at all.
    worker = app.worker(concurrency=20, poll_interval=0.05)
    run = asyncio.ensure_future(worker.run())
    end = time.monotonic() + deadline
    while time.monotonic() < end and not run.done():
        counts = await asyncio.to_thread(app.store.count_jobs, tenant_id="default")
        if not any(counts.get(s, 0) for s in ("scheduled", "retrying", "running")):
            break
        await asyncio.sleep(0.2)
    worker.stop()
    await run
    app.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 30.0))
