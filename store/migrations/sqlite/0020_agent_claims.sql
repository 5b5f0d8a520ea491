-- What the agent says about the box it runs on, sent with every enrollment
-- and shown in the Devices list: its hostname and the agent's version.
-- Claims, like the MAC, never proof; empty for devices that enrolled
-- before they were kept, until their agent next enrolls.
ALTER TABLE devices ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN agent_version TEXT NOT NULL DEFAULT '';
