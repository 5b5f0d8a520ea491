-- A certificate renewal a gateway asked for and has not confirmed yet: at
-- most one per gateway. started_at is when gatehouse last asked the PKI, so
-- an attempt whose answer was lost can find what it issued and revoke it;
-- claimed_until keeps a second request from asking again meanwhile. Once
-- the PKI answered, the new certificate waits here (its private key sealed
-- to the gateway in issue mode), so a repeated request gets the same one
-- instead of another. The gateway's confirmation deletes the row.
CREATE TABLE renewals (
    device_id     TEXT PRIMARY KEY REFERENCES devices (id),
    fingerprint   TEXT NOT NULL,
    seal_key      BLOB NOT NULL,
    replaces      TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL,
    serial        TEXT,
    certificate   TEXT,
    ca_chain      TEXT,
    sealed_key    BLOB
);
