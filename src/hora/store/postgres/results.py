"""Results: the channel on which jobs and workflows that reached their end are announced.

The migration's row triggers send ``pg_notify('hora_results', 'job:<id>')`` (or
``workflow:<id>``) in the transaction that ends the record, whatever code path ended it; a
process that waits for results LISTENs on one dedicated connection (``hora.waiting``) and
fans the announcements out to all its waiters.
"""

from __future__ import annotations

from hora.store.postgres.connection import PostgresConnection, PostgresSubscription

#: The channel of the results migration's triggers.
RESULTS_CHANNEL = "hora_results"


class PostgresResults(PostgresConnection):
    def subscribe_results(self) -> PostgresSubscription:
        return PostgresSubscription(self._url, self.outage, channel=RESULTS_CHANNEL)
