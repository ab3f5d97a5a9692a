"""The shared store: PostgreSQL through a psycopg connection pool, for many workers on many
nodes.

One class per aggregate (``jobs``, ``schedules``, ``tenants``, ``locks``, ``workflows``,
``approvals``), each over the pool and transactions of ``connection``; ``PostgresStore`` is
their union and implements ``hora.store.Store``. The SQL is in ``store/sql/postgres/``.
"""

from __future__ import annotations

from hora.store.postgres.approvals import PostgresApprovals
from hora.store.postgres.batches import PostgresBatches
from hora.store.postgres.connection import (
    MIGRATION_LOCK,
    PostgresConnection,
    PostgresSubscription,
    Q,
)
from hora.store.postgres.control import PostgresControl
from hora.store.postgres.flowkeys import PostgresFlowKeys
from hora.store.postgres.inbox import PostgresInbox
from hora.store.postgres.jobs import PostgresJobs
from hora.store.postgres.locks import PostgresLocks
from hora.store.postgres.notifications import PostgresNotifications
from hora.store.postgres.ratelimits import PostgresRateLimits
from hora.store.postgres.recipients import PostgresRecipients
from hora.store.postgres.registry import PostgresRegistry
from hora.store.postgres.results import PostgresResults
from hora.store.postgres.retention import PostgresRetention
from hora.store.postgres.schedules import PostgresSchedules, _schedule_params
from hora.store.postgres.templates import PostgresTemplates
from hora.store.postgres.tenants import PostgresTenants
from hora.store.postgres.workers import PostgresWorkers
from hora.store.postgres.workflows import PostgresWorkflows


class PostgresStore(PostgresJobs, PostgresSchedules, PostgresTenants, PostgresLocks,
                    PostgresWorkflows, PostgresApprovals, PostgresWorkers, PostgresResults,
                    PostgresRegistry, PostgresRetention, PostgresRateLimits, PostgresControl,
                    PostgresFlowKeys, PostgresBatches, PostgresNotifications,
                    PostgresTemplates, PostgresInbox, PostgresRecipients):
    """Every aggregate over one PostgreSQL schema (see ``PostgresConnection``)."""


__all__ = ["MIGRATION_LOCK", "PostgresConnection", "PostgresStore", "PostgresSubscription",
           "Q", "_schedule_params"]
