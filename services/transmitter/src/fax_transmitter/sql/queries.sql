-- Inbound faxes (inbound_faxes): the receptions the transmitter answers and files. A job's attempts are fax_jobs'
-- (fax_jobs/sql/attempts.sql).

-- name: number_owner
-- Which account (and faxbox) receives calls to a number; no row: the number is not ours.
SELECT account_id, faxbox_id FROM phone_numbers WHERE e164 = $1::text;

-- name: reception_started
INSERT INTO inbound_faxes (id, account_id, faxbox_id, status, call_id, from_number, from_name, to_number)
VALUES ($1, $2, $3, 'receiving', $4, $5, $6, $7);

-- name: reception_answered
-- The call as data while it is up (its SIP dialog, its media ports): should this transmitter die mid-call, its
-- successor hangs the call up from this.
UPDATE inbound_faxes SET sip_call = $2::jsonb WHERE id = $1 AND status = 'receiving';

-- name: orphaned_receptions
-- At a transmitter's start: receptions whose call carries the SIP contact it starts with. It could bind that
-- address, so the process receiving them is dead and nobody will finish them.
UPDATE inbound_faxes
   SET status = 'failed', error_message = 'reception interrupted: transmitter stopped',
       updated_at = now(), completed_at = now(), revision = revision + 1
 WHERE status = 'receiving' AND sip_call -> 'dialog' ->> 'contact' = $1::text
RETURNING id, account_id, faxbox_id, from_number, to_number, pages, error_message, sip_call;

-- name: reception_page
UPDATE inbound_faxes SET pages = $2, updated_at = now(), revision = revision + 1
 WHERE id = $1 AND status = 'receiving';

-- name: reception_received
-- Filed until it commits: a run after a commit whose answer was lost finds it filed, returns no row, and its event
-- is not enqueued again.
UPDATE inbound_faxes
   SET status = 'received', pages = $2, remote_station_id = $3, tiff_key = $4, pdf_key = $5, rx_result = $6,
       error_message = '', updated_at = now(), completed_at = now(), revision = revision + 1
 WHERE id = $1 AND status = 'receiving'
RETURNING id;

-- name: reception_failed
-- As reception_received: no row when the reception was already finished.
UPDATE inbound_faxes
   SET status = 'failed', pages = $2, remote_station_id = $3, rx_result = $4, error_message = $5,
       updated_at = now(), completed_at = now(), revision = revision + 1
 WHERE id = $1 AND status = 'receiving'
RETURNING id;

-- name: abandoned_receptions
-- Receptions a stopped transmitter left behind: nobody will finish them.
UPDATE inbound_faxes
   SET status = 'failed', error_message = 'reception interrupted: transmitter stopped',
       updated_at = now(), completed_at = now(), revision = revision + 1
 WHERE status = 'receiving' AND updated_at < now() - make_interval(secs => $1)
RETURNING id, account_id, faxbox_id, from_number, to_number, pages;
