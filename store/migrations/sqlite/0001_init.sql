-- One row per gateway; its current key is devices.fingerprint.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    name        TEXT UNIQUE,
    mac         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    source_addr TEXT NOT NULL DEFAULT '',
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    approved_by TEXT NOT NULL DEFAULT '',
    approved_at INTEGER,
    reason      TEXT NOT NULL DEFAULT '',
    acked_at    INTEGER,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX devices_state_first_seen ON devices (state, first_seen);
CREATE INDEX devices_first_seen ON devices (first_seen);
CREATE INDEX devices_mac ON devices (mac);

-- Every key a device has enrolled with: the enrollment itself.
CREATE TABLE device_keys (
    fingerprint TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    key_type    TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    seal_key    BLOB NOT NULL,
    mac         TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX device_keys_device ON device_keys (device_id);

-- One row per backend step of provisioning a device. sealed holds secret
-- outputs, each sealed to the device; it is cleared once the device acks.
CREATE TABLE provisioning_steps (
    device_id   TEXT NOT NULL REFERENCES devices (id),
    step        TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    started_at  INTEGER,
    finished_at INTEGER,
    output      TEXT NOT NULL DEFAULT '{}',
    sealed      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (device_id, step)
);

-- The device timeline and the audit log of operator decisions.
CREATE TABLE device_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX device_events_device ON device_events (device_id, id);

-- API tokens; only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER
);
