-- Nonces keyed by when they expire first. A nonce's expiry is derived from
-- the signed timestamp (timestamp + twice the accepted skew), so a replayed
-- request carries the same expiry and meets its own row; new rows then land
-- at the end of the one b-tree instead of at random pages of two (the old
-- key's and the expiry index's), which is most of what a device request
-- wrote, and pruning expired nonces is a range at the key's start.
CREATE TABLE nonces_by_expiry (
    expires_at  INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    PRIMARY KEY (expires_at, fingerprint, nonce)
) WITHOUT ROWID;
INSERT INTO nonces_by_expiry (expires_at, fingerprint, nonce)
    SELECT expires_at, fingerprint, nonce FROM nonces;
DROP TABLE nonces;
ALTER TABLE nonces_by_expiry RENAME TO nonces;
