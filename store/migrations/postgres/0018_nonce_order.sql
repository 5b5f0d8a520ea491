-- Nonces keyed by when they expire first; see the SQLite migration of the
-- same name for why.
ALTER TABLE nonces DROP CONSTRAINT nonces_pkey;
DROP INDEX nonces_expires;
ALTER TABLE nonces ADD PRIMARY KEY (expires_at, fingerprint, nonce);
