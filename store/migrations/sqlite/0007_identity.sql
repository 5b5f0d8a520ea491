-- Operators who log in to the web page. Local users keep an argon2id hash
-- (PHC string) of their password; OIDC users keep none and are found by
-- their issuer and subject, never by a name the provider may reuse.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    source        TEXT NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    subject       TEXT,
    created_at    INTEGER NOT NULL,
    last_login    INTEGER,
    disabled_at   INTEGER
);
CREATE UNIQUE INDEX users_subject ON users (subject) WHERE subject IS NOT NULL;

-- Tokens expire and are revoked rather than deleted, so the audit trail's
-- names keep meaning something; a name is unique among live tokens.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
UPDATE api_tokens SET name = name || '-' || substr(id, 1, 8)
    WHERE rowid NOT IN (SELECT min(rowid) FROM api_tokens GROUP BY name);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- A session now stands for a user or a token. Sessions last hours, so
-- starting them afresh (everyone logs in once more) loses nothing. The CSRF
-- token is derived from the cookie secret, so it is no longer kept.
DROP TABLE sessions;
CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_id   TEXT REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (token_id IS NULL))
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_token ON sessions (token_id);
