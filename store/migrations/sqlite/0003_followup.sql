-- The job working each step, so an operator can ask for a retry now.
ALTER TABLE provisioning_steps ADD COLUMN job_id INTEGER NOT NULL DEFAULT 0;
-- Operator-set labels (JSON object), used to pick and fill deployment manifests.
ALTER TABLE devices ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
