-- A reception holds a lease its transmitter renews from the answer until its outcome commits (in the call, and
-- while its filing waits for S3 or Postgres). A reception whose lease ran out belongs to a transmitter that is gone,
-- wherever its successor starts: any transmitter's sweeper ends it failed, as an outbound attempt's (0005).
ALTER TABLE inbound_faxes ADD COLUMN lease_expires_at timestamptz;
-- Receptions a transmitter from before leases answers (during the upgrade, or in progress now) never renew one:
-- they get an hour, longer than a call may last plus the drain, before they are taken for abandoned.
ALTER TABLE inbound_faxes ALTER COLUMN lease_expires_at SET DEFAULT now() + interval '1 hour';
UPDATE inbound_faxes SET lease_expires_at = now() + interval '1 hour' WHERE status = 'receiving';
CREATE INDEX inbound_faxes_receiving_lease ON inbound_faxes (lease_expires_at) WHERE status = 'receiving';
