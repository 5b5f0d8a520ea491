-- A pending device whose new key came with the MAC of an approved gateway
-- is a candidate to replace that gateway's key (a reflash, new storage):
-- rekey_of names the gateway. Forgetting the gateway leaves the candidate
-- an ordinary pending device.
ALTER TABLE devices ADD COLUMN rekey_of TEXT REFERENCES devices (id) ON DELETE SET NULL;
CREATE INDEX devices_rekey_of ON devices (rekey_of) WHERE rekey_of IS NOT NULL;

-- When a re-key replaced the key: a replaced key is refused everywhere.
ALTER TABLE device_keys ADD COLUMN replaced_at INTEGER;
