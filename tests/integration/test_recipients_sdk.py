"""``app.recipients`` on both stores with a fake clock: upsert and bulk through the SDK,
tenant views, the unsubscribe token's life, ``resolve`` at the clock's now, and ``app.aio``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hora import Hora
from hora.clock import FakeClock
from hora.errors import InvalidNotification, NotFound
from hora.notify.model import LocalTime, Preferences, Recipient


def test_upsert_get_and_replace(app: Hora, clock: FakeClock) -> None:
    r = app.recipients.upsert("u42", timezone="Europe/Paris", quiet_hours="21:00-08:00",
                              holidays="fr", business_days_only=True,
                              addresses={"email": "ada@example.com"},
                              preferences={"categories": {"marketing": False}},
                              data={"name": "Ada"})
    assert (r.tenant_id, r.holidays, r.created_at) == ("default", "FR", clock.now())
    assert r.preferences.allows("marketing", "email") == "opted out of marketing"
    clock.advance(timedelta(minutes=5))
    again = app.recipients.upsert("u42", timezone="UTC")
    assert (again.quiet_hours, again.business_days_only, dict(again.addresses)) == (
        None, False, {})
    assert again.created_at == r.created_at and again.updated_at == clock.now()
    with pytest.raises(NotFound):
        app.recipients.get("nobody")
    assert app.recipients.find("nobody") is None


def test_bulk_is_all_or_nothing_and_tenant_scoped(app: Hora) -> None:
    rows: list[Recipient | dict[str, object]] = [
        Recipient(id="a", tenant_id="someone-else", timezone="Asia/Tokyo"),
        {"id": "b", "quiet_hours": {"start": "22:00", "end": "06:30"}},
    ]
    assert app.recipients.upsert_many(rows) == 2
    # a Recipient value is written to the app's tenant, whatever it says
    assert app.recipients.get("a").tenant_id == "default"
    assert app.for_tenant("someone-else").recipients.find("a") is None
    with pytest.raises(InvalidNotification) as e:
        app.recipients.upsert_many([{"id": "c"}, {"id": "d", "quiet_hours": "25:00-08:00"}])
    assert e.value.field == "recipients[1].quiet_hours.start"
    with pytest.raises(InvalidNotification) as e:
        app.recipients.upsert_many([{"id": "e", "colour": "blue"}])
    assert e.value.field == "recipients[0].colour"
    assert app.recipients.find("c") is None
    assert [r.id for r in app.recipients.list()] == ["a", "b"]
    assert [r.id for r in app.recipients.list(after="a", limit=1)] == ["b"]
    with pytest.raises(InvalidNotification):
        app.recipients.upsert_many({"id": f"x{i}"} for i in range(10_001))
    assert app.recipients.upsert_many([]) == 0


def test_unsubscribe_token_life(app: Hora) -> None:
    app.recipients.upsert("u1", addresses={"email": "ada@example.com"})
    url = app.recipients.unsubscribe_url("u1", "https://hora.example.com/")
    token = url.rsplit("/", 1)[1]
    assert url == f"https://hora.example.com/v1/unsubscribe/{token}"
    found = app.recipients.by_token(token)
    assert found is not None and found.id == "u1"
    # another tenant's view finds it too: the link names no tenant, the token does
    assert app.for_tenant("other").recipients.unsubscribe(token).preferences == Preferences(
        channels={"email": False})
    assert app.recipients.get("u1").preferences.allows("news", "email") is not None
    app.recipients.unsubscribe(token, "news")
    assert app.recipients.get("u1").preferences.categories == {"news": False}
    newer = app.recipients.unsubscribe_url("u1", "https://hora.example.com")
    assert newer != url and app.recipients.by_token(token) is None
    with pytest.raises(NotFound):
        app.recipients.unsubscribe(token)
    with pytest.raises(NotFound):
        app.recipients.unsubscribe_url("nobody", "https://hora.example.com")
    with pytest.raises(InvalidNotification) as e:
        app.recipients.unsubscribe_url("u1", "hora.example.com")
    assert e.value.field == "base_url"
    assert app.recipients.delete("u1") and not app.recipients.delete("u1")
    assert app.recipients.by_token(newer.rsplit("/", 1)[1]) is None


def test_resolve_at_the_clock_now(app: Hora, clock: FakeClock) -> None:
    clock.set(datetime(2030, 11, 1, 9, tzinfo=UTC))  # a Friday, All Saints: 10:00 Paris
    app.recipients.upsert("u1", timezone="Europe/Paris", quiet_hours="21:00-08:00",
                          holidays="FR", business_days_only=True)
    # the next 09:00 is Saturday's; business days only: Monday at the quiet hours' end
    at, note = app.recipients.resolve("u1", LocalTime(9))
    assert at == datetime(2030, 11, 4, 7, tzinfo=UTC)  # Monday 08:00 Paris
    assert note == "2030-11-02 is a weekend day (Saturday): moved to 2030-11-04 08:00 local"
    # now, on the holiday itself
    at, note = app.recipients.resolve("u1")
    assert at == datetime(2030, 11, 4, 7, tzinfo=UTC)
    assert note is not None and note.startswith("2030-11-01 is a holiday")
    with pytest.raises(NotFound):
        app.recipients.resolve("nobody")


def test_async_face(app: Hora) -> None:
    async def go() -> None:
        await app.aio.upsert_recipient("u1", timezone="Asia/Tokyo")
        assert (await app.aio.get_recipient("u1")).timezone == "Asia/Tokyo"
        assert await app.aio.upsert_recipients([{"id": "u2"}]) == 1
        assert [r.id for r in await app.aio.list_recipients()] == ["u1", "u2"]
        r = await app.aio.set_recipient_preferences("u1", {"channels": {"inapp": False}})
        assert r.preferences.channels == {"inapp": False}
        assert (await app.aio.recipient_unsubscribe_url("u1", "http://localhost:8000")
                ).startswith("http://localhost:8000/v1/unsubscribe/")
        assert await app.aio.delete_recipient("u2")

    asyncio.run(go())
