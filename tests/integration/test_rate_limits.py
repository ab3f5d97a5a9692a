"""Rate limits set by name at run time (``app.rate_limits``), on both stores: overrides over
what tasks declare (here and, through the registry, in other processes), bad input, the
waiting-by-reason gauge, and the API's per-tenant request limit shared by API processes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from hora import FakeClock, Hora
from hora.api.auth import LEASE_SECONDS, RateLimiter, api_rate
from hora.errors import InvalidPayload, NotFound
from hora.flow import RateLimit, window_bound
from hora.store import Store
from tests.store.test_conformance import raw


def define(app: Hora) -> None:
    @app.task(name="mail.send", rate_limit=RateLimit("10/s", name="smtp", burst=2))
    def send(to: str) -> None: ...

    @app.task(name="push.send", rate_limit=[RateLimit("3/h", key="user_id"),
                                            RateLimit("20/s", name="smtp")])
    def push(user_id: str) -> None: ...

    @app.task(name="plain")
    def plain() -> None: ...


@pytest.fixture
def remote(database_url: str, clock: FakeClock, app: Hora) -> Iterator[Hora]:
    """Another process on the store without the code (the CLI, the API without --app)."""
    other = Hora(database_url, clock=clock)
    yield other
    other.close()


def test_declared_limits_are_listed_with_their_source(app: Hora, remote: Hora) -> None:
    define(app)
    limits = {r.name: r for r in app.rate_limits.list()}
    assert set(limits) == {"smtp", "push.send[user_id]"}
    smtp = limits["smtp"]
    # two tasks share "smtp": the strictest declared rate shows, with both tasks
    assert (smtp.rate, smtp.burst, smtp.source, smtp.tasks) == (
        "10/s", 2, "declared", ("mail.send", "push.send"))
    assert limits["push.send[user_id]"].rate == "3/h"
    # a process without the code sees them once a worker registered the tasks
    assert remote.rate_limits.list() == []
    app.register_tasks()
    assert {r.name: (r.rate, r.source, r.tasks) for r in remote.rate_limits.list()} == {
        "smtp": ("10/s", "declared", ("mail.send", "push.send")),
        "push.send[user_id]": ("3/h", "declared", ("push.send",))}


def test_set_overrides_the_declared_rate_and_delete_goes_back(
        app: Hora, remote: Hora, clock: FakeClock) -> None:
    define(app)
    app.register_tasks()
    info = remote.rate_limits.set("smtp", "2/s", burst=3)
    assert (info.rate, info.burst, info.source, info.declared_rate, info.declared_burst) == (
        "2/s", 3, "override", "10/s", 2)
    assert info.updated_at == clock.now()
    assert app.rate_limits.get("smtp") == info  # every process sees it
    assert remote.store.get_rate_limit("default", "smtp") is not None  # the row the claim reads
    # a limit no task declares, and a whole queue's
    assert app.rate_limits.set("provider-x", "100/15m").rate == "100/15m"
    assert app.rate_limits.set("queue:emails", "5/s").source == "override"
    assert [r.name for r in app.rate_limits.list()] == [
        "provider-x", "push.send[user_id]", "queue:emails", "smtp"]
    # delete: the declared rate again; a limit nobody declares is gone
    assert app.rate_limits.delete("smtp") is True
    back = app.rate_limits.get("smtp")
    assert (back.rate, back.source) == ("10/s", "declared")
    assert app.rate_limits.delete("provider-x") is True
    assert app.rate_limits.in_force("provider-x") is None
    with pytest.raises(NotFound):
        app.rate_limits.get("provider-x")
    assert app.rate_limits.delete("smtp") is False  # no override left
    # tenant-scoped: another tenant's view has none of these overrides
    assert app.for_tenant("other").rate_limits.get("smtp").source == "declared"
    assert [r.name for r in app.for_tenant("other").rate_limits.list()
            if r.source == "override"] == []


@pytest.mark.parametrize(("name", "rate", "burst", "field"), [
    ("smtp", "10/parsec", 1, "rate"),
    ("smtp", "0/s", 1, "rate"),
    ("smtp", "-5/s", 1, "rate"),
    ("smtp", "5/0s", 1, "rate"),
    ("smtp", 10, 1, "rate"),
    ("smtp", "5/s", 0, "burst"),
    ("smtp", "5/s", -1, "burst"),
    ("smtp", "5/s", True, "burst"),
    ("x" * 201, "5/s", 1, "name"),
    ("", "5/s", 1, "name"),
    ("bad\x00name", "5/s", 1, "name"),
    ("hora.api", "5/s", 1, "name"),
    ("queue:", "5/s", 1, "name"),
])
def test_bad_input_is_an_invalid_payload_naming_the_field(
        app: Hora, name: str, rate: object, burst: int, field: str) -> None:
    with pytest.raises(InvalidPayload) as e:
        app.rate_limits.set(name, rate, burst=burst)  # type: ignore[arg-type]
    assert e.value.field == field
    assert app.store.list_rate_limits("default") == []


def test_a_tenant_sets_a_bounded_number_of_limits(app: Hora, monkeypatch: pytest.MonkeyPatch,
                                                  ) -> None:
    monkeypatch.setattr("hora.ratelimits.MAX_OVERRIDES", 3)
    for name in ("a", "b", "c"):
        app.rate_limits.set(name, "1/s")
    with pytest.raises(InvalidPayload, match="3 rate limits") as e:
        app.rate_limits.set("d", "1/s")
    assert e.value.field == "name"
    assert app.rate_limits.set("c", "2/s").rate == "2/s"  # changing one is fine
    assert app.for_tenant("other").rate_limits.set("d", "1/s").source == "override"
    assert [r.name for r in app.rate_limits.list()] == ["a", "b", "c"]


def test_the_async_face(app: Hora) -> None:
    async def use() -> list[str]:
        await app.aio.set_rate_limit("smtp", "7/m")
        got = await app.aio.get_rate_limit("smtp")
        listed = await app.aio.list_rate_limits()
        await app.aio.delete_rate_limit("smtp")
        return [got.rate, *(r.name for r in listed)]

    assert asyncio.run(use()) == ["7/m", "smtp"]
    assert app.list_rate_limits() == []


# -- the waiting-by-reason gauge --------------------------------------------------------------


def sample(reason: str, name: str) -> float | None:
    return REGISTRY.get_sample_value("hora_jobs_waiting", {"reason": reason, "name": name})


def test_the_gauge_counts_waiting_jobs_by_reason(app: Hora, database_url: str) -> None:
    jobs = [app.enqueue("t.mail", {}, allow_unregistered=True) for _ in range(3)]
    jobs += [app.enqueue("t.mail", {}, queue="held", allow_unregistered=True)]
    with raw(database_url) as conn:
        for job, blocked in zip(jobs, ("rate:smtp", "rate:smtp", "concurrency:acct"),
                                strict=False):
            conn.execute(f"UPDATE hora_jobs SET blocked_on = '{blocked}' WHERE id = '{job.id}'")
    app.pause_queue("held")
    app.rate_limits.refresh_waiting_metric()
    assert sample("rate_limited", "smtp") == 2
    assert sample("concurrency", "acct") == 1
    assert sample("queue_paused", "held") == 1
    # they start (or the queue resumes): the series drop to 0, not left stale
    with raw(database_url) as conn:
        conn.execute("UPDATE hora_jobs SET blocked_on = NULL")
    app.resume_queue("held")
    app.rate_limits.refresh_waiting_metric()
    assert sample("rate_limited", "smtp") == 0 and sample("queue_paused", "held") == 0


# -- the API's request limit, shared by API processes -----------------------------------------


def test_two_api_processes_share_one_tenant_budget(store: Store) -> None:
    """Two limiters (two API processes) on one store, a tenant at 50 requests/s, requests
    every 2 ms alternately on each for 3 s of a fake clock: together they admit no more than
    the limit's bound over the span (plus one lease), about the limit (not twice it), and
    write to the store about 10 times a second each, not once per request."""
    clock = FakeClock()
    a, b = RateLimiter(store, clock), RateLimiter(store, clock)
    rate = 50.0
    admitted: list[float] = []
    start = clock.now()
    for i in range(1500):
        limiter = a if i % 2 == 0 else b
        if limiter.take("acme", rate) == 0:
            admitted.append((clock.now() - start).total_seconds())
        clock.advance(0.002)
    span = 3.0
    gcra_rate, burst = api_rate(rate)
    assert len(admitted) <= window_bound(gcra_rate, burst, span + LEASE_SECONDS)
    assert len(admitted) >= 0.9 * rate * span  # the budget is used, not lost
    # any 1 s window: within the bound of 1 s plus one lease
    one_second = window_bound(gcra_rate, burst, 1.0 + LEASE_SECONDS)
    for i, t in enumerate(admitted):
        assert sum(1 for u in admitted[i:] if u < t + 1.0) <= one_second
    for limiter in (a, b):
        assert limiter.store_calls <= 2 * span / LEASE_SECONDS + 2
    # another tenant has its own budget
    assert a.take("other", rate) == 0


def test_a_refused_tenant_is_refused_locally_until_the_budget_refills(store: Store) -> None:
    clock = FakeClock()
    limiter = RateLimiter(store, clock)
    assert limiter.take("acme", 1.0) == 0
    wait = limiter.take("acme", 1.0)
    assert wait == pytest.approx(1.0)
    calls = limiter.store_calls
    for _ in range(100):
        assert limiter.take("acme", 1.0) > 0
    assert limiter.store_calls == calls  # no store round trip per refused request
    clock.advance(timedelta(seconds=1))
    assert limiter.take("acme", 1.0) == 0


def test_a_raised_tenant_limit_does_not_inherit_the_old_debt(store: Store) -> None:
    clock = FakeClock()
    limiter = RateLimiter(store, clock)
    assert limiter.take("acme", 0.001) == 0  # one request per 1000 s
    assert limiter.take("acme", 0.001) > 900
    clock.advance(2.5)  # the operator raised it to 100/s
    other = RateLimiter(store, clock)  # another process: no local memory of the refusal
    # of the 1000 s owed, about a second is kept (the clock-skew margin)...
    assert 0.5 < other.take("acme", 100.0) <= 1.1
    clock.advance(1.1)
    assert other.take("acme", 100.0) == 0  # ...then the new rate holds
