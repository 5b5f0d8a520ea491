-- Backend call budgets shared by every replica on the database: one token
-- bucket per quota (a DPS instance, a hub, a Mender server), so N replicas
-- together send no more than one process may. Only PostgreSQL deployments
-- use it; SQLite has one process, which paces itself.
CREATE TABLE quota_buckets (
    name       TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at BIGINT NOT NULL
);
