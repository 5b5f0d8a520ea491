-- The audit log: every operator decision, refused one and refused
-- credential, append-only and hash-chained. hash is SHA-256 over the
-- entry's fields and prev_hash, encoded as package audit documents
-- (docs/audit.md); the first entry's prev_hash is 64 zeros. seq is given
-- explicitly (last + 1), never reused. at is Unix microseconds, as in every
-- other table. detail is a JSON object as text, hashed as stored.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    source     TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

-- gatehouse itself never changes or removes an entry; these make a mistake
-- in its code fail loudly. Someone with the file can drop them, which is
-- what the hash chain and a remembered head are for.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
