"""The claim's gate decisions (hora.store.gating) and the bad input flow options refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from hora import Hora, RateLimit
from hora.errors import InvalidPayload
from hora.flow import Gates, parse_rate
from hora.store.gating import Bucket, Candidate, Limit, concurrency_name, lock_id, plan

NOW = 1_000_000_000


def cand(job_id: str, *, rates: tuple[tuple[str, str, str, int], ...] = (),
         conc: tuple[str, int, str] | None = None, blocked_on: str | None = None) -> Candidate:
    gates = Gates(tuple((n, k, parse_rate(r), b) for n, k, r, b in rates), conc)
    return Candidate(job_id, "default", "default", gates.json, False, blocked_on)


def test_pushed_jobs_get_successive_slots_and_a_returning_one_keeps_the_head() -> None:
    buckets: dict[tuple[str, str, str], Bucket] = {}
    p = plan([cand(f"j{i}", rates=(("send", "", "10/s", 1),)) for i in range(4)], NOW,
             overrides={}, buckets=buckets, running={})
    assert p.admitted == ["j0"]
    assert [b[1] - NOW for b in p.blocked] == [100_000, 200_000, 300_000]
    # j1 comes back on its slot but the bucket is 5 ms later (j0 started late): it is pushed
    # to that instant, not behind j3
    bucket = buckets[("default", "send", "")]
    bucket.tat += 5_000
    again = plan([cand("j1", rates=(("send", "", "10/s", 1),), blocked_on="rate:send")],
                 NOW + 100_000, overrides={}, buckets=buckets, running={})
    assert again.blocked[0][1] == NOW + 105_000


def test_an_override_replaces_the_declared_rate() -> None:
    p = plan([cand("a", rates=(("send", "", "1000/s", 1),)),
              cand("b", rates=(("send", "", "1000/s", 1),))], NOW,
             overrides={("default", "send"): Limit(parse_rate("1/m"), 1)}, buckets={},
             running={})
    assert p.admitted == ["a"] and p.blocked[0][1] == NOW + 60_000_000


def test_concurrency_policies() -> None:
    key = "sync:account=a1"
    running = {("default", key): 1}
    q = plan([cand("a", conc=(key, 1, "queue"))], NOW, overrides={}, buckets={},
             running=running)
    assert q.blocked[0][2:] == (f"concurrency: {key}", "concurrency:sync")
    c = plan([cand("a", conc=(key, 1, "cancel_new"))], NOW, overrides={}, buckets={},
             running=running)
    assert c.cancelled and "cancel_new" in c.cancelled[0][1]
    s = plan([cand("a", conc=(key, 1, "cancel_in_progress"))], NOW, overrides={}, buckets={},
             running=running)
    assert s.supersede == [("default", key, "a")] and s.blocked[0][0] == "a"
    # the batch counts what it starts: limit 2, one running, three candidates
    two = plan([cand(x, conc=(key, 2, "queue")) for x in "abc"], NOW, overrides={},
               buckets={}, running=running)
    assert two.admitted == ["a"] and [b[0] for b in two.blocked] == ["b", "c"]


def test_names_and_lock_ids() -> None:
    assert concurrency_name("sync:account=a:1=2") == "sync"
    assert concurrency_name("hora.workflow:x:account=a1") == "hora.workflow:x"
    assert concurrency_name("report") == "report"
    assert lock_id("t", "k") == lock_id("t", "k") != lock_id("t", "k2")


@pytest.mark.parametrize("rate", ["10/parsec", "0/s", "-1/s", "10", "1/0s"])
def test_malformed_rates_are_refused_naming_the_field(rate: str) -> None:
    with pytest.raises(InvalidPayload) as e:
        RateLimit(rate)
    assert e.value.field == "rate_limit"


def test_a_payload_without_the_key_field_is_refused_at_enqueue(tmp_path: Path) -> None:
    app = Hora(f"sqlite:///{tmp_path / 'h.db'}")

    @app.task(name="push", rate_limit=RateLimit("3/h", key="user_id"))
    def push(user_id: str = "") -> None: ...

    with pytest.raises(InvalidPayload) as e:
        app.enqueue("push", {})
    assert e.value.field == "payload.user_id"
    assert app.count_jobs() == {}
    app.close()


def test_jobs_back_late_together_are_spaced_again() -> None:
    buckets = {("default", "send", ""): Bucket(NOW + 50_000, NOW + 400_000)}
    p = plan([cand(f"j{i}", rates=(("send", "", "10/s", 1),), blocked_on="rate:send")
              for i in range(3)], NOW, overrides={}, buckets=buckets, running={})
    assert [b[1] - NOW for b in p.blocked] == [50_000, 150_000, 250_000]


def test_ahead_admits_a_job_later_but_not_past_jobs_already_in_line() -> None:
    buckets: dict[tuple[str, str, str], Bucket] = {}
    rates = (("send", "", "10/s", 1),)
    p = plan([cand(f"j{i}", rates=rates) for i in range(3)], NOW, overrides={},
             buckets=buckets, running={}, ahead_us=150_000)
    assert p.admitted == ["j0", "j1"] and p.start_at == {"j1": NOW + 100_000}
    assert [b[1] - NOW for b in p.blocked] == [200_000]
    # a new job may not jump the one pushed back to +200 ms, even if it could start then
    later = plan([cand("new", rates=rates)], NOW + 100_000, overrides={}, buckets=buckets,
                 running={}, ahead_us=150_000)
    assert later.admitted == [] and later.blocked[0][1] == NOW + 300_000
    # the pushed one, read a little ahead of its slot, starts on it
    back = plan([Candidate("j2", "default", "default", Gates(
        (("send", "", parse_rate("10/s"), 1),), None).json, False, "rate:send",
        NOW + 200_000)], NOW + 150_000, overrides={}, buckets=buckets, running={},
        ahead_us=150_000)
    assert back.admitted == ["j2"] and back.start_at == {"j2": NOW + 200_000}
