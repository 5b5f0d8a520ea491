-- Every certificate the PKI issued for a gateway and gatehouse kept: the
-- provisioning step's, each renewal's and each re-key's. Decommissioning
-- revokes all that are not revoked yet, renewal revokes the one it
-- replaces, and the fleet view finds those about to expire.
CREATE TABLE certificates (
    serial      TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    fingerprint TEXT NOT NULL,
    origin      TEXT NOT NULL,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX certificates_device ON certificates (device_id, issued_at);
CREATE INDEX certificates_live_expiry ON certificates (not_after) WHERE revoked_at IS NULL;
