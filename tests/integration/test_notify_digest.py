"""Digests on each store and a fake clock: a digested category folds a recipient's
notifications into one message per period of their local clock; ``over_limit="digest"``
folds only what exceeds a cap; a delivery is never folded into a digest already sent
(docs/notifications.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hora import FakeClock, Hora
from hora.errors import InvalidNotification
from hora.notify.model import DeliveryState, LocalTime
from hora.notify.service import DIGEST_TASK, Digest
from hora.states import JobState
from hora.testing import run_until_idle

T0 = datetime(2030, 1, 1, 9, 5, tzinfo=UTC)  # 10:05 in Paris


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def setup(app: Hora) -> None:
    app.recipients.upsert("u42", timezone="Europe/Paris", data={"name": "Ada"})
    app.templates.put("item", channel="*", subject="{{ data.title }}", text="{{ data.title }}")
    app.templates.put("digest", channel="*", subject="{{ items|length }} updates",
                      text="{% for i in items %}- {{ i.data.title }}\n{% endfor %}")


def test_an_hourly_digest_is_one_message_of_the_hours_items(app: Hora,
                                                            clock: FakeClock) -> None:
    setup(app)
    app.notifications.category("activity", digest=Digest("digest", every=timedelta(hours=1)))
    ids = []
    for minutes, title in ((0, "a"), (15, "b"), (35, "c")):
        clock.set(T0 + timedelta(minutes=minutes))
        ids.append(app.notify("u42", category="activity", template="item",
                              data={"title": title}, channels=["inapp"]).id)
    first = app.notifications.get(ids[0])
    (d,) = first.deliveries
    # 11:00 Paris, the end of the local hour
    assert d.digest_at == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert d.reason is not None and d.reason.startswith("digested: in the digest of")
    jobs = app.list_jobs(task=DIGEST_TASK, include_internal=True).items
    assert len(jobs) == 1 and jobs[0].due_at == d.digest_at  # one job for the three
    run_until_idle(app, until=T0 + timedelta(hours=2))
    states = [app.notifications.get(i).deliveries[0] for i in ids]
    assert {(s.state, s.reason) for s in states} == {
        (DeliveryState.SENT, "digested: one message of 3")}
    [item] = app.inbox.list("u42").items
    assert item.subject == "3 updates"
    assert item.text.splitlines() == ["- a", "- b", "- c"]


def test_over_limit_digest_folds_only_what_exceeds_the_cap(app: Hora,
                                                          clock: FakeClock) -> None:
    setup(app)
    app.notifications.category("alerts", per_recipient="2/h", over_limit="digest",
                               digest=Digest("digest", at=LocalTime(18, 0)))
    sent = [app.notify("u42", category="alerts", template="item", data={"title": t},
                       channels=["inapp"]) for t in "abcd"]
    direct = [n for n in sent if n.deliveries[0].digest_at is None]
    folded = [n for n in sent if n.deliveries[0].digest_at is not None]
    assert len(direct) == 2 and len(folded) == 2
    assert folded[0].deliveries[0].digest_at == datetime(2030, 1, 1, 17, 0, tzinfo=UTC)
    assert "over the cap 2/h" in (folded[0].deliveries[0].reason or "")
    run_until_idle(app, until=T0 + timedelta(days=1))
    assert all(app.notifications.get(n.id).deliveries[0].state is DeliveryState.SENT
               for n in sent)
    subjects = sorted(i.subject for i in app.inbox.list("u42").items)
    assert subjects == ["2 updates", "a", "b"]  # nothing lost: two alone, two in the digest


def test_a_digest_already_sent_gets_a_new_one_for_late_items(app: Hora) -> None:
    setup(app)
    app.notifications.category("activity", digest=Digest("digest", every=timedelta(hours=1)))
    one = app.notify("u42", category="activity", template="item", data={"title": "a"},
                     channels=["log"])
    job_id = one.deliveries[0].job_id
    at = one.deliveries[0].digest_at
    assert at is not None
    # a worker whose clock is ahead starts the digest now: the next item must not join it
    started, _ = app.store.claim_jobs(owner="w1", queues=["default"], tasks=None, now=at,
                                      lease_until=at + timedelta(minutes=5), limit=10)
    assert [j.id for j in started] == [job_id]
    two = app.notify("u42", category="activity", template="item", data={"title": "b"},
                     channels=["log"])
    assert two.deliveries[0].job_id not in (None, job_id)
    assert two.deliveries[0].digest_at == one.deliveries[0].digest_at
    assert app.get_job(two.deliveries[0].job_id or "").state is JobState.SCHEDULED


def test_a_digest_needs_a_period_or_a_time() -> None:
    with pytest.raises(InvalidNotification) as e:
        Digest("digest")
    assert e.value.field == "digest"
    with pytest.raises(InvalidNotification) as e:
        Digest("digest", every=timedelta(seconds=5))
    assert e.value.field == "digest.every"
