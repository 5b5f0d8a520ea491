-- A decommission: who asked and when. The device row stays, in state
-- decommissioned, until an operator forgets it.
CREATE TABLE decommissions (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    actor      TEXT NOT NULL,
    at         INTEGER NOT NULL,
    from_state TEXT NOT NULL
);

-- One row per backend a decommission removes the gateway from, worked by
-- one durable job each. removals is the receipt (JSON array of
-- {backend, object, result}) once the backend's part succeeded.
CREATE TABLE removal_steps (
    device_id   TEXT NOT NULL REFERENCES devices (id),
    backend     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    removals    TEXT NOT NULL DEFAULT '[]',
    job_id      INTEGER NOT NULL DEFAULT 0,
    started_at  INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (device_id, backend)
);

-- Devices an operator forgot: the device row, its keys, steps and
-- certificates are gone, so its key's next contact is a fresh enrollment;
-- this record (and the timeline, which device_events keeps by id) says
-- what was forgotten, so the new enrollment can be told about it.
CREATE TABLE forgotten_devices (
    device_id    TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    mac          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    state        TEXT NOT NULL,
    forgotten_by TEXT NOT NULL,
    forgotten_at INTEGER NOT NULL
);
CREATE INDEX forgotten_devices_fingerprint ON forgotten_devices (fingerprint, forgotten_at);
CREATE INDEX forgotten_devices_mac ON forgotten_devices (mac, forgotten_at);
