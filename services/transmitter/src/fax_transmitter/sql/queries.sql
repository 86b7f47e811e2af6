-- Inbound faxes (inbound_faxes): the receptions the transmitter answers and files. A job's attempts are fax_jobs'
-- (fax_jobs/sql/attempts.sql).

-- name: number_owner
-- Which account (and faxbox) receives calls to a number; no row: the number is not ours.
SELECT account_id, faxbox_id FROM phone_numbers WHERE e164 = $1::text;

-- name: reception_started
-- Under a lease ($8 s) from the start: renewed while the reception is held (renew_reception_lease).
INSERT INTO inbound_faxes (id, account_id, faxbox_id, status, call_id, from_number, from_name, to_number,
                           lease_expires_at)
VALUES ($1, $2, $3, 'receiving', $4, $5, $6, $7, now() + make_interval(secs => $8::int));

-- name: renew_reception_lease
UPDATE inbound_faxes SET lease_expires_at = now() + make_interval(secs => $2::int)
 WHERE id = $1 AND status = 'receiving';

-- name: reception_answered
-- The call as data while it is up (its SIP dialog, its media ports): should this transmitter die mid-call, its
-- successor hangs the call up from this.
UPDATE inbound_faxes SET sip_call = $2::jsonb WHERE id = $1 AND status = 'receiving';

-- name: reap_abandoned_receptions
-- Receptions whose transmitter is gone: it stopped renewing the lease, or ($1, only at a transmitter's start, before
-- it answers a call) their answered call carries the SIP contact we start with: we could bind that address, so the
-- process that held it is dead, and we need not wait for the lease. The receptions the caller itself still holds
-- ($2) are never taken: a lease that ran out while Postgres was away is renewed, and the outcome recorded, by their
-- holder. The pages of such a reception died with its process (its TIFF waits there until S3 takes it): it ends
-- failed. Its call comes back so the far end can be told it ended. Several sweepers at once take different rows
-- (SKIP LOCKED); a late record by the holder finds it finished and changes nothing (reception_received).
UPDATE inbound_faxes
   SET status = 'failed', error_message = 'reception interrupted: transmitter stopped', lease_expires_at = NULL,
       updated_at = now(), completed_at = now(), revision = revision + 1
 WHERE id IN (
    SELECT id FROM inbound_faxes
     WHERE status = 'receiving'
       AND (lease_expires_at < now() OR sip_call -> 'dialog' ->> 'contact' = $1::text)
       AND id <> ALL($2::uuid[])
       FOR UPDATE SKIP LOCKED)
RETURNING id, account_id, faxbox_id, from_number, to_number, pages, error_message, sip_call;

-- name: reception_page
UPDATE inbound_faxes SET pages = $2, updated_at = now(), revision = revision + 1
 WHERE id = $1 AND status = 'receiving';

-- name: reception_received
-- Filed until it commits: a run after a commit whose answer was lost finds it filed, returns no row, and its event
-- is not enqueued again.
UPDATE inbound_faxes
   SET status = 'received', pages = $2, remote_station_id = $3, tiff_key = $4, pdf_key = $5, rx_result = $6,
       error_message = '', lease_expires_at = NULL, updated_at = now(), completed_at = now(),
       revision = revision + 1
 WHERE id = $1 AND status = 'receiving'
RETURNING id;

-- name: reception_failed
-- As reception_received: no row when the reception was already finished.
UPDATE inbound_faxes
   SET status = 'failed', pages = $2, remote_station_id = $3, rx_result = $4, error_message = $5,
       lease_expires_at = NULL, updated_at = now(), completed_at = now(), revision = revision + 1
 WHERE id = $1 AND status = 'receiving'
RETURNING id;
