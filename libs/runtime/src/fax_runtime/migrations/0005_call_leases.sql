-- A claimed attempt holds a lease its transmitter renews while the call runs. An attempt whose lease ran out
-- belongs to a transmitter that died: it is ended as a failed attempt (and retried if attempts remain), never
-- dialled again as the same attempt.
ALTER TABLE fax_jobs ADD COLUMN lease_expires_at timestamptz;
CREATE INDEX fax_jobs_processing_lease ON fax_jobs (lease_expires_at) WHERE status = 'processing';
-- Calls in progress per account and per destination are counted on every claim.
CREATE INDEX fax_jobs_processing_account ON fax_jobs (account_id) WHERE status = 'processing';
CREATE INDEX fax_jobs_processing_destination ON fax_jobs (to_number) WHERE status = 'processing';

-- Handlers de-duplicate with state-guarded updates and the notifier with its deliveries table: never used.
DROP TABLE processed_events;
