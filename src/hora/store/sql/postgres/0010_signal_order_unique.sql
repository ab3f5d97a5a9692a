-- A workflow's signals are kept in the order sent, and that order is one: (tenant, workflow,
-- ord) is unique, as SQLite's index has said since 0005 (ord comes from an identity column
-- here, so no existing row can break it). Found by the dialect schema equality test.
DROP INDEX hora_workflow_signals_order;
CREATE UNIQUE INDEX hora_workflow_signals_order ON hora_workflow_signals (tenant_id, workflow_id,
                                                                          ord);
