-- Pending gateways by the address they were last heard from; see the
-- SQLite migration of the same name for why.
CREATE INDEX devices_pending_source ON devices (source_addr) WHERE state = 'pending';
