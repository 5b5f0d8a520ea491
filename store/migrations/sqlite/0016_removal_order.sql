-- The order a decommission listed its backends in, so its receipt reads in
-- that order on every dialect (SQLite's rowid has no PostgreSQL twin).
ALTER TABLE removal_steps ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
UPDATE removal_steps SET position = rowid;
