-- Pending gateways by when they were last heard from: the periodic expiry
-- finds those gone quiet without walking every pending row, and so does the
-- Pending page's silent/active filter.
CREATE INDEX devices_state_last_seen ON devices (state, last_seen);
