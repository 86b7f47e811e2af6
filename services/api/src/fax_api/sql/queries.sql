-- Outbound fax jobs and inbound faxes as the Kazoo faxes API sees them. Every query is scoped to the caller's
-- account. Lists page by keyset: newest first, start_key is the id of the first row of the page.

-- A new job, its fax.job.submitted outbox row and the relay's wake-up in ONE statement: atomic on its own (one
-- implicit transaction), and one round trip instead of five (BEGIN, two INSERTs, NOTIFY, COMMIT). The outbox
-- columns are fax_runtime.outbox's; the NOTIFY is delivered on commit, like enqueue()'s.
-- name: submit_job
WITH job AS (
    INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries)
    VALUES ($1::uuid, $2::text, $3::text, $4::jsonb, $5::text, $6::text, $7::int)
    RETURNING id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
              tx_result, revision, created_at, delivered_at
), event AS (
    INSERT INTO outbox (event_id, routing_key, payload, headers)
    VALUES ($8::uuid, $9::text, $10::bytea, $11::jsonb)
), wake AS (
    SELECT pg_notify($12::text, '')
)
SELECT job.* FROM job, wake;

-- name: get_job
SELECT id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages, tx_result,
       revision, created_at, delivered_at
FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid AND status = ANY($3::text[]);

-- name: job_status
SELECT status FROM fax_jobs WHERE account_id = $1::text AND id = $2::uuid;

-- An unknown start_key matches no row (the row comparison with NULL is never true): an empty page.
-- name: page_jobs
SELECT id, status, from_number, to_number, created_at
FROM fax_jobs
WHERE account_id = $1::text AND status = ANY($2::text[])
  AND ($3::uuid IS NULL
       OR (created_at, id) <= (SELECT created_at, id FROM fax_jobs WHERE account_id = $1::text AND id = $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4::int;

-- A change (PUT/POST/PATCH) is read, built and written under this lock, so two changes at once never build on the
-- same request (one would undo the other), and none interleaves with the fetcher's or the transmitter's transitions.
-- name: lock_job
SELECT id, status, request, tiff_key, pages
FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid
FOR UPDATE;

-- A put/post starts the job over with a new request (request_revision), so the fetcher prepares it again and any
-- render of an earlier request can no longer be recorded; attempts, result and rendered document reset. Guarded by
-- state in the UPDATE itself, so it cannot race the transmitter's claim (pending -> processing).
-- name: replace_queued_job
UPDATE fax_jobs
SET request = $3::jsonb, to_number = $4::text, from_number = $5::text, retries = $6::int, status = $7::text,
    attempts = 0, tx_result = '{}', error_message = '', tiff_key = NULL, pages = NULL,
    request_revision = request_revision + 1, revision = revision + 1, updated_at = now()
WHERE account_id = $1::text AND id = $2::uuid AND status IN ('attaching_files', 'pending')
RETURNING id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages, tx_result,
          revision, created_at, delivered_at;

-- name: delete_job
DELETE FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid AND status = ANY($3::text[])
RETURNING id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages, tx_result,
          revision, created_at, delivered_at;

-- name: upload_used_elsewhere
-- Does another job of the account still name this shared upload? (jsonb ? : the key is an element of uploads.)
SELECT EXISTS (
    SELECT 1 FROM fax_jobs
    WHERE account_id = $1::text AND id <> $2::uuid AND request -> 'document' -> 'uploads' ? $3::text
);

-- name: lock_finished_job
SELECT id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages, tx_result,
       revision, created_at, delivered_at
FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid AND status IN ('completed', 'failed')
FOR UPDATE;

-- name: forget_job_attachment
UPDATE fax_jobs SET tiff_key = NULL, revision = revision + 1, updated_at = now()
WHERE id = $1::uuid
RETURNING id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages, tx_result,
          revision, created_at, delivered_at;

-- name: page_inbound
SELECT id, status, from_number, to_number, pages, created_at
FROM inbound_faxes
WHERE account_id = $1::text AND status = ANY($2::text[])
  AND ($3::uuid IS NULL
       OR (created_at, id) <= (SELECT created_at, id FROM inbound_faxes WHERE account_id = $1::text AND id = $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4::int;

-- name: get_inbound
SELECT id, account_id, faxbox_id, status, call_id, from_number, from_name, to_number, remote_station_id, pages,
       tiff_key, pdf_key, rx_result, error_message, revision, created_at, completed_at
FROM inbound_faxes
WHERE account_id = $1::text AND id = $2::uuid AND status = ANY($3::text[]);

-- name: lock_inbound
SELECT id, account_id, faxbox_id, status, call_id, from_number, from_name, to_number, remote_station_id, pages,
       tiff_key, pdf_key, rx_result, error_message, revision, created_at, completed_at
FROM inbound_faxes
WHERE account_id = $1::text AND id = $2::uuid AND status = ANY($3::text[])
FOR UPDATE;

-- name: forget_inbound_attachment
UPDATE inbound_faxes SET tiff_key = NULL, pdf_key = NULL, revision = revision + 1, updated_at = now()
WHERE id = $1::uuid
RETURNING id, account_id, faxbox_id, status, call_id, from_number, from_name, to_number, remote_station_id, pages,
          tiff_key, pdf_key, rx_result, error_message, revision, created_at, completed_at;

-- name: delete_inbound
DELETE FROM inbound_faxes
WHERE account_id = $1::text AND id = $2::uuid AND status = ANY($3::text[])
RETURNING id, account_id, faxbox_id, status, call_id, from_number, from_name, to_number, remote_station_id, pages,
          tiff_key, pdf_key, rx_result, error_message, revision, created_at, completed_at;

-- Rows without an account (mail that named no known faxbox) never match: account_id = $1 is not true for NULL.
-- name: page_smtplog
SELECT id, account_id, faxbox_id, faxbox_name, from_address, to_address, number, content_type, filename, errors,
       job_id, created_at
FROM smtplog
WHERE account_id = $1::text
  AND ($2::uuid IS NULL
       OR (created_at, id) <= (SELECT created_at, id FROM smtplog WHERE account_id = $1::text AND id = $2::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $3::int;

-- name: get_smtplog
SELECT id, account_id, faxbox_id, faxbox_name, from_address, to_address, number, content_type, filename, errors,
       job_id, created_at
FROM smtplog
WHERE account_id = $1::text AND id = $2::uuid;

-- name: jobs_by_state
-- The fax_jobs gauge, read at scrape time: Postgres is the only source of truth for a job's state.
SELECT status, count(*) AS jobs FROM fax_jobs GROUP BY status;

-- name: outbox_unsent
SELECT count(*) FROM outbox WHERE sent_at IS NULL;
