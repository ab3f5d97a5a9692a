"""``app.notify`` end to end on each store, on a fake clock: the recipient's local time and
quiet hours, preferences and missing addresses as suppressions, dedup keys, per-recipient
caps that delay instead of dropping, delivery states, and tenant isolation
(docs/notifications.md)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from hora import FakeClock, Hora
from hora.errors import Conflict, InvalidNotification, NotFound
from hora.models import JobFilter
from hora.notify.model import DeliveryState, LocalTime
from hora.notify.service import DELIVER_TASK
from hora.states import JobState
from hora.testing import run_until_idle

T0 = datetime(2030, 1, 1, tzinfo=UTC)  # a Tuesday; 01:00 in Paris


def setup(app: Hora) -> None:
    app.recipients.upsert("u42", timezone="Europe/Paris", quiet_hours="21:00-08:00",
                          addresses={"email": "ada@example.com"}, data={"name": "Ada"})
    app.templates.put("welcome", channel="*", subject="Hello {{ recipient.data.name }}",
                      text="Your report {{ data.report }} is ready.")


def test_a_local_time_is_the_recipients_own_and_delivery_lands_in_the_inbox(
        app: Hora, clock: FakeClock) -> None:
    setup(app)
    n = app.notify("u42", category="reports", template="welcome", data={"report": "R1"},
                   at=LocalTime(9, 0), channels=["inapp", "log"], correlation_id="onb-u42")
    # 09:00 in Paris (UTC+1 in January) is 08:00 UTC, that same morning
    assert n.deliver_at == datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    assert [(d.channel, d.state) for d in n.deliveries] == [
        ("inapp", DeliveryState.SCHEDULED), ("log", DeliveryState.SCHEDULED)]
    jobs = app.list_jobs(task=DELIVER_TASK, include_internal=True).items
    assert {j.due_at for j in jobs} == {n.deliver_at}
    assert {j.correlation_id for j in jobs} == {"onb-u42"}
    run_until_idle(app, until=T0 + timedelta(days=1))
    after = app.notifications.get(n.id)
    assert {d.channel: d.state for d in after.deliveries} == {
        "inapp": DeliveryState.SENT, "log": DeliveryState.SENT}
    items = app.inbox.list("u42").items
    assert [i.subject for i in items] == ["Hello Ada"]
    assert "R1" in items[0].text


def test_now_inside_quiet_hours_moves_to_their_end_with_a_note(app: Hora) -> None:
    setup(app)
    n = app.notify("u42", category="reports", template="welcome", data={"report": "R1"},
                   channels=["log"])
    # 01:00 in Paris is quiet (21:00-08:00): delivered at 08:00 Paris = 07:00 UTC
    assert n.deliver_at == datetime(2030, 1, 1, 7, 0, tzinfo=UTC)
    assert n.note and "quiet" in n.note


def test_preferences_and_missing_addresses_are_suppressions_with_the_reason(
        app: Hora) -> None:
    setup(app)
    app.recipients.set_preferences("u42", {"categories": {"marketing": {"email": False}}})
    n = app.notify("u42", category="marketing", template="welcome", data={"report": "x"},
                   channels=["email", "webhook", "log"])
    states = {d.channel: (d.state, d.reason) for d in n.deliveries}
    assert states["email"] == (DeliveryState.SUPPRESSED, "opted out of marketing by email")
    assert states["webhook"] == (DeliveryState.SUPPRESSED, "no webhook address")
    assert states["log"][0] is DeliveryState.SCHEDULED
    # one job only: suppressed channels cost no job
    assert len(app.list_jobs(task=DELIVER_TASK, include_internal=True).items) == 1


def test_a_dedup_key_is_one_notification_within_its_window(app: Hora,
                                                           clock: FakeClock) -> None:
    setup(app)
    first = app.notify("u42", category="reports", template="welcome", data={"report": "R1"},
                       channels=["log"], dedup_key="report-R1")
    again = app.notify("u42", category="reports", template="welcome", data={"report": "R1"},
                       channels=["log"], dedup_key="report-R1")
    assert first.created and not again.created and again.id == first.id
    with pytest.raises(Conflict, match="report-R1"):
        app.notify("u42", category="reports", template="welcome", data={"report": "R2"},
                   channels=["log"], dedup_key="report-R1")
    assert len(app.notifications.list(recipient="u42")) == 1
    clock.advance(timedelta(days=1, seconds=1))  # the category's window (1 day) is over
    later = app.notify("u42", category="reports", template="welcome", data={"report": "R2"},
                       channels=["log"], dedup_key="report-R1")
    assert later.created and later.id != first.id


def test_a_per_recipient_cap_delays_the_rest_and_loses_none(app: Hora,
                                                            clock: FakeClock) -> None:
    setup(app)
    app.recipients.upsert("u7", timezone="UTC", data={"name": "Bo"})
    app.notifications.category("reminders", per_recipient="3/h")
    ids = [app.notify(who, category="reminders", template="welcome", data={"report": i},
                      channels=["log"]).id for i in range(5) for who in ("u7",)]
    run_until_idle(app, until=T0 + timedelta(hours=3))
    sent = [app.notifications.get(i) for i in ids]
    assert all(d.state is DeliveryState.SENT for n in sent for d in n.deliveries)
    jobs = app.list_jobs(task=DELIVER_TASK, include_internal=True).items
    starts = sorted(j.started_at for j in jobs if j.started_at is not None)
    assert len(starts) == 5
    # never more than 3 in any hour: the 4th starts an hour after the 1st at the earliest
    assert all(starts[k + 3] - starts[k] >= timedelta(hours=1) for k in range(len(starts) - 3))


def test_a_missing_template_variable_fails_the_delivery_without_retries(
        app: Hora) -> None:
    setup(app)
    app.templates.put("broken", channel="*", subject="Hi", text="{{ data.missing }}")
    n = app.notify("u42", category="reports", template="broken", channels=["log"],
                   at=datetime(2030, 1, 1, 12, tzinfo=UTC))
    run_until_idle(app, until=T0 + timedelta(days=1))
    (d,) = app.notifications.get(n.id).deliveries
    assert d.state is DeliveryState.FAILED and d.reason and "missing" in d.reason
    job = app.get_job(d.job_id or "")
    assert job.state is JobState.DEAD and job.attempt == 1


def test_bad_input_names_the_field_and_writes_nothing(app: Hora) -> None:
    setup(app)
    cases = [
        ({"channels": ["pager"]}, "channels[0]"),
        ({"channels": []}, "channels"),
        ({"at": "tomorrow-ish"}, "at"),
        ({"at": datetime(2030, 1, 2)}, "at"),
        ({"category": "bad category"}, "category"),
    ]
    for override, field in cases:
        kwargs = {"category": "reports", "template": "welcome", "channels": ["log"],
                  **override}
        with pytest.raises(InvalidNotification) as e:
            app.notify("u42", **kwargs)  # type: ignore[arg-type]
        assert e.value.field == field
    with pytest.raises(NotFound):
        app.notify("nobody", category="reports", template="welcome", channels=["log"])
    assert app.notifications.list() == []
    assert Counter(j.task for j in app.store.list_jobs(
        JobFilter(tenant_id="default"), limit=10).items) == Counter()


def test_another_tenant_sees_none_of_it(app: Hora) -> None:
    setup(app)
    n = app.notify("u42", category="reports", template="welcome", data={"report": "R1"},
                   channels=["log"])
    other = app.for_tenant("acme")
    with pytest.raises(NotFound):
        other.notifications.get(n.id)
    assert other.notifications.list() == []
    with pytest.raises(NotFound):  # its recipient is not acme's either
        other.notify("u42", category="reports", template="welcome", channels=["log"])
