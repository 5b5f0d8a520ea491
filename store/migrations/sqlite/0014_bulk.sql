-- Bulk operations: an operator approves or dismisses many pending gateways
-- at once. The operation and each of its items are kept, so a job that is
-- interrupted resumes at the first unfinished item after a restart, and the
-- operator can follow the progress and read each item's result.
CREATE TABLE bulk_operations (
    id          TEXT PRIMARY KEY,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    total       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX bulk_operations_created ON bulk_operations (created_at);

CREATE TABLE bulk_items (
    operation_id TEXT NOT NULL REFERENCES bulk_operations (id),
    seq          INTEGER NOT NULL,
    device_id    TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    labels       TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'waiting',
    result       TEXT NOT NULL DEFAULT '',
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (operation_id, seq)
);
CREATE INDEX bulk_items_waiting ON bulk_items (operation_id, state, seq);
