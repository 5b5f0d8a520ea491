-- Browser sessions made by logging in with an API token; only the SHA-256 of
-- the cookie's secret is kept, and the CSRF token the page must echo.
CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
