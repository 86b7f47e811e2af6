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

-- Newest first from the start_key's row on (none: from the top; an unknown one matches no row, as the row comparison
-- with NULL is never true: an empty page). Each state is read from fax_jobs_account_status in page order and the
-- states merged, so a page costs about a page per state however long the account's history, with one plan for every
-- folder and start_key: a prepared statement's generic plan too, which a `$3 IS NULL OR ...` test would turn into a
-- scan down to the start_key.
-- name: page_jobs
WITH start AS (
    SELECT created_at, id FROM fax_jobs WHERE account_id = $1::text AND id = $3::uuid
    UNION ALL
    SELECT 'infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff' WHERE $3::uuid IS NULL
)
SELECT j.id, j.status, j.from_number, j.to_number, j.created_at
FROM (SELECT DISTINCT unnest($2::text[]) AS status) folder
CROSS JOIN LATERAL (
    SELECT id, status, from_number, to_number, created_at FROM fax_jobs
    WHERE account_id = $1::text AND status = folder.status AND (created_at, id) <= (SELECT created_at, id FROM start)
    ORDER BY created_at DESC, id DESC
    LIMIT $4::int
) j
ORDER BY j.created_at DESC, j.id DESC
LIMIT $4::int;

-- A put/post starts the job over: attempts, result and rendered document reset, so the fetcher prepares it again.
-- Guarded by state in the UPDATE itself, so it cannot race the transmitter's claim (pending -> processing).
-- name: replace_queued_job
-- replaced_tiff_key/replaced_pages: the render of the request replaced, whose objects the caller removes.
WITH replaced AS (
    SELECT id, tiff_key, pages FROM fax_jobs
    WHERE account_id = $1::text AND id = $2::uuid AND status IN ('attaching_files', 'pending')
    FOR UPDATE
)
UPDATE fax_jobs j
SET request = $3::jsonb, to_number = $4::text, from_number = $5::text, retries = $6::int, status = $7::text,
    attempts = 0, tx_result = '{}', error_message = '', tiff_key = NULL, pages = NULL,
    revision = j.revision + 1, updated_at = now()
FROM replaced
WHERE j.id = replaced.id
RETURNING j.id, j.account_id, j.status, j.request, j.to_number, j.from_number, j.retries, j.attempts, j.tiff_key,
          j.pages, j.tx_result, j.revision, j.created_at, j.delivered_at,
          replaced.tiff_key AS replaced_tiff_key, replaced.pages AS replaced_pages;

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

-- Paged as page_jobs is (inbound_faxes_account_status).
-- name: page_inbound
WITH start AS (
    SELECT created_at, id FROM inbound_faxes WHERE account_id = $1::text AND id = $3::uuid
    UNION ALL
    SELECT 'infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff' WHERE $3::uuid IS NULL
)
SELECT f.id, f.status, f.from_number, f.to_number, f.pages, f.created_at
FROM (SELECT DISTINCT unnest($2::text[]) AS status) folder
CROSS JOIN LATERAL (
    SELECT id, status, from_number, to_number, pages, created_at FROM inbound_faxes
    WHERE account_id = $1::text AND status = folder.status AND (created_at, id) <= (SELECT created_at, id FROM start)
    ORDER BY created_at DESC, id DESC
    LIMIT $4::int
) f
ORDER BY f.created_at DESC, f.id DESC
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
-- The fax_jobs gauge, read at scrape time: Postgres is the only source of truth for a job's state. Unfinished jobs
-- are counted (fax_jobs_unfinished holds only them); finished ones are running totals, into which the changes
-- recorded since the last scrape are folded here (migration 0011).
WITH recorded AS (
    DELETE FROM fax_job_total_changes RETURNING status, change
), totals AS (
    UPDATE fax_job_totals
    SET completed = completed + coalesce((SELECT sum(change) FROM recorded WHERE status = 'completed'), 0),
        failed = failed + coalesce((SELECT sum(change) FROM recorded WHERE status = 'failed'), 0)
    RETURNING completed, failed
)
SELECT status, count(*) AS jobs FROM fax_jobs
WHERE status IN ('attaching_files', 'pending', 'processing')
GROUP BY status
UNION ALL
SELECT 'completed', completed FROM totals
UNION ALL
SELECT 'failed', failed FROM totals;

-- name: outbox_unsent
SELECT count(*) FROM outbox WHERE sent_at IS NULL;
