-- The agent's certificate signing request, for PKIs that sign rather than issue.
ALTER TABLE device_keys ADD COLUMN csr TEXT NOT NULL DEFAULT '';
