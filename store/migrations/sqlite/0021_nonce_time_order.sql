-- Nonces ordered by expiry and then by nonce, not by key fingerprint. The
-- agent's nonces begin with the signing time's nanoseconds within the
-- signed second, so within one expiry second its rows now arrive in key
-- order and are appended to the page being filled; ordered by fingerprint
-- they landed at random among that second's rows, and a batch of eight
-- dirtied (and wrote to the log) about eight pages. A replay still meets
-- its own row: expiry, nonce and fingerprint are all the same.
CREATE TABLE nonces_by_time (
    expires_at  INTEGER NOT NULL,
    nonce       TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (expires_at, nonce, fingerprint)
) WITHOUT ROWID;
INSERT INTO nonces_by_time (expires_at, nonce, fingerprint)
    SELECT expires_at, nonce, fingerprint FROM nonces;
DROP TABLE nonces;
ALTER TABLE nonces_by_time RENAME TO nonces;
