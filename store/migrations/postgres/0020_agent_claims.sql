-- The agent's hostname and version claims; see the SQLite migration of the
-- same name for why.
ALTER TABLE devices ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN agent_version TEXT NOT NULL DEFAULT '';
