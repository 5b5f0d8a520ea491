-- Pending gateways by the address they were last heard from: while the
-- pending queue is nearly full, a new key is let in only from an address
-- with none waiting, and that is asked of this index for every new key a
-- flood sends. Partial, so it holds the pending rows only and costs
-- approved and provisioned gateways nothing.
CREATE INDEX devices_pending_source ON devices (source_addr) WHERE state = 'pending';
