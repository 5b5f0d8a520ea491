-- Request nonces seen per device key, kept until the request's timestamp has
-- left the accepted window, so a captured request replays neither after a
-- restart nor on another process sharing the database. The primary key is
-- what makes "first use wins" atomic.
CREATE TABLE nonces (
    fingerprint TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_expires ON nonces (expires_at);
