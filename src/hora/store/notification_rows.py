"""What both stores share of the notification tables (``hora.store.NotificationStore``):
the rows they write and how a read row becomes a ``Notification``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hora.ids import new_id
from hora.models import NewJob
from hora.notify.model import Delivery, DeliveryState, Notification


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A notification to insert (``NotificationStore.create_notification``)."""

    id: str
    tenant_id: str
    recipient_id: str
    category: str
    template: str
    data_json: str
    correlation_id: str | None
    dedup_key: str | None
    dedup_until: datetime | None
    fingerprint: str
    requested_at: str | None
    deliver_at: datetime
    note: str | None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    channel: str
    state: DeliveryState
    reason: str | None = None
    address: str | None = None
    job_id: str | None = None
    #: Folded into the digest of this instant (``job_id`` is the digest's job).
    digest_at: datetime | None = None


def delivery_from_row(r: Sequence[Any], instant: Callable[[Any], datetime]) -> Delivery:
    return Delivery(channel=r[1], state=DeliveryState(r[2]), reason=r[3], address=r[4],
                    job_id=r[5], provider_id=r[6], updated_at=instant(r[7]),
                    digest_at=None if r[8] is None else instant(r[8]))


def notification_from_row(r: Sequence[Any], instant: Callable[[Any], datetime],
                          deliveries: Sequence[Delivery] = ()) -> Notification:
    data = r[5] if isinstance(r[5], dict) else json.loads(r[5])
    return Notification(id=r[0], tenant_id=r[1], recipient_id=r[2], category=r[3],
                        template=r[4], data=data, deliver_at=instant(r[6]),
                        created_at=instant(r[7]), correlation_id=r[8], dedup_key=r[9],
                        requested_at=r[10], note=r[11], deliveries=tuple(deliveries))


@dataclass(frozen=True, slots=True)
class DigestItem:
    """A notification folded into a digest, as the digest's template lists it."""

    notification_id: str
    template: str
    data: dict[str, Any]
    created_at: datetime
    correlation_id: str | None


def digest_item_from_row(r: Sequence[Any], instant: Callable[[Any], datetime]) -> DigestItem:
    data = r[2] if isinstance(r[2], dict) else json.loads(r[2])
    return DigestItem(r[0], r[1], data, instant(r[3]), r[4])


def digest_job(conn: Any, job: NewJob, notification_id: str, now: Any,
               insert: Callable[[Any, Sequence[NewJob], Any], list[tuple[str, bool]]],
               state_sql: str) -> str:
    """The id of the digest job a delivery folds into (both stores; ``insert`` is the
    store's ``_insert_jobs``, ``state_sql`` its ``job_state`` query): the one its key names
    while it still waits (locked on PostgreSQL until this transaction ends, so it cannot
    start without this delivery), else a new one for the same instant (the first already
    started)."""
    ((job_id, created),) = insert(conn, [job], now)
    if created:
        return str(job_id)
    row = conn.execute(state_sql, {"id": job_id}).fetchone()
    if row is not None and row[0] in ("scheduled", "retrying"):
        return str(job_id)
    again = replace(job, id=new_id(), idempotency_key=f"{job.idempotency_key}:{notification_id}")
    ((job_id, _),) = insert(conn, [again], now)
    return str(job_id)
