-- Gateways an operator listed before they enrolled: the first key that
-- enrolls with a listed MAC is approved under the listed name and pinned
-- here (device_id, fingerprint, used_at), so no later key for that MAC is
-- approved from the list. A listed name is reserved: no other device may be
-- approved under it. device_id is no foreign key: forgetting a device must
-- not be blocked by the entry it once used.
CREATE TABLE allowlist (
    mac         TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    labels      TEXT NOT NULL DEFAULT '{}',
    imported_by TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    device_id   TEXT,
    fingerprint TEXT,
    used_at     INTEGER
);
CREATE INDEX allowlist_device ON allowlist (device_id) WHERE device_id IS NOT NULL;
