-- Nonces ordered by expiry and then by nonce; see the SQLite migration of
-- the same name for why.
ALTER TABLE nonces DROP CONSTRAINT nonces_pkey;
ALTER TABLE nonces ADD PRIMARY KEY (expires_at, nonce, fingerprint);
