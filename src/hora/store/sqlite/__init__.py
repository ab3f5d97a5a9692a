"""The embedded store: one SQLite file, WAL, every write in ``BEGIN IMMEDIATE``.

One class per aggregate (``jobs``, ``schedules``, ``tenants``, ``locks``, ``workflows``,
``approvals``), each over the connection handling of ``connection``; ``SQLiteStore`` is
their union and implements ``hora.store.Store``. The SQL is in ``store/sql/sqlite/``.
"""

from __future__ import annotations

from hora.states import JobState
from hora.store.sqlite.approvals import SQLiteApprovals
from hora.store.sqlite.batches import SQLiteBatches
from hora.store.sqlite.connection import Q, SQLiteConnection, _statements
from hora.store.sqlite.control import SQLiteControl
from hora.store.sqlite.flowkeys import SQLiteFlowKeys
from hora.store.sqlite.inbox import SQLiteInbox
from hora.store.sqlite.jobs import SQLiteJobs
from hora.store.sqlite.locks import SQLiteLocks
from hora.store.sqlite.notifications import SQLiteNotifications
from hora.store.sqlite.ratelimits import SQLiteRateLimits
from hora.store.sqlite.recipients import SQLiteRecipients
from hora.store.sqlite.registry import SQLiteRegistry
from hora.store.sqlite.results import SQLiteResults
from hora.store.sqlite.retention import SQLiteRetention
from hora.store.sqlite.schedules import SQLiteSchedules
from hora.store.sqlite.templates import SQLiteTemplates
from hora.store.sqlite.tenants import SQLiteTenants
from hora.store.sqlite.workers import SQLiteWorkers
from hora.store.sqlite.workflows import SQLiteWorkflows


class SQLiteStore(SQLiteJobs, SQLiteSchedules, SQLiteTenants, SQLiteLocks, SQLiteWorkflows,
                  SQLiteApprovals, SQLiteWorkers, SQLiteResults, SQLiteRegistry,
                  SQLiteRetention, SQLiteRateLimits, SQLiteControl, SQLiteFlowKeys,
                  SQLiteBatches, SQLiteNotifications, SQLiteTemplates, SQLiteInbox,
                  SQLiteRecipients):
    """Every aggregate over one SQLite file (see ``SQLiteConnection`` for the options)."""


__all__ = ["JobState", "Q", "SQLiteConnection", "SQLiteStore", "_statements"]
