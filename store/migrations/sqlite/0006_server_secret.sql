-- Secrets the server generates for itself, made once and kept: the key of
-- the verification codes operators compare. Never logged or exposed.
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Each device's verification code, written at enrollment, so duplicate codes
-- among pending gateways are found by an index rather than by keying every
-- pending fingerprint on each page. '' until the service has keyed it.
ALTER TABLE devices ADD COLUMN verification_code TEXT NOT NULL DEFAULT '';
CREATE INDEX devices_state_code ON devices (state, verification_code);
CREATE INDEX devices_state_mac ON devices (state, mac);
