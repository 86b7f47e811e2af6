-- The fax job as its owner (an account, through the API's dialects or the SMTP gateway) submits, reads, changes and
-- removes it. Every query is scoped to the caller's account. Lists page by keyset: newest first, start_key is the id
-- of the first row of the page. Each block that writes a job is a row of fax_jobs.lifecycle's table, guarded by the
-- states that row names.

-- A new job, its fax.job.submitted outbox row and the relay's wake-up in ONE statement: atomic on its own (one
-- implicit transaction), and one round trip instead of five (BEGIN, two INSERTs, NOTIFY, COMMIT). The outbox
-- columns are fax_runtime.outbox's; the NOTIFY is delivered on commit, like enqueue()'s. A job with uploaded
-- documents starts attaching_files (the fetcher makes it pending once its fax is rendered), one with a document URL
-- starts pending, as in Kazoo.
-- name: submit_job
WITH job AS (
    INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries)
    VALUES ($1::uuid, $2::text,
            CASE WHEN $3::jsonb #> '{document,uploads}' <> '[]' THEN 'attaching_files' ELSE 'pending' END,
            $3::jsonb, $4::text, $5::text, $6::int)
    RETURNING id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
              tx_result, revision, created_at, delivered_at
), event AS (
    INSERT INTO outbox (event_id, routing_key, payload, headers)
    VALUES ($7::uuid, $8::text, $9::bytea, $10::jsonb)
), wake AS (
    SELECT pg_notify($11::text, '')
)
SELECT job.* FROM job, wake;

-- name: get_job
SELECT id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
       tx_result, revision, created_at, delivered_at
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
-- name: change_queued_job
UPDATE fax_jobs
SET request = $3::jsonb, to_number = $4::text, from_number = $5::text, retries = $6::int,
    status = CASE WHEN $3::jsonb #> '{document,uploads}' <> '[]' THEN 'attaching_files' ELSE 'pending' END,
    attempts = 0, tx_result = '{}', error_message = '', tiff_key = NULL, pages = NULL,
    request_revision = request_revision + 1, revision = revision + 1, updated_at = now()
WHERE account_id = $1::text AND id = $2::uuid AND status IN ('attaching_files', 'pending')
RETURNING id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
          tx_result, revision, created_at, delivered_at;

-- Until the transmitter claims it, a queued job may be withdrawn.
-- name: delete_queued_job
DELETE FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid AND status IN ('attaching_files', 'pending')
RETURNING id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
          tx_result, revision, created_at, delivered_at;

-- name: delete_finished_job
DELETE FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid AND status IN ('completed', 'failed')
RETURNING id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
          tx_result, revision, created_at, delivered_at;

-- name: upload_used_elsewhere
-- Does another job of the account still name this shared upload? (jsonb ? : the key is an element of uploads.)
SELECT EXISTS (
    SELECT 1 FROM fax_jobs
    WHERE account_id = $1::text AND id <> $2::uuid AND request -> 'document' -> 'uploads' ? $3::text
);

-- name: lock_finished_job
SELECT id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
       tx_result, revision, created_at, delivered_at
FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid AND status IN ('completed', 'failed')
FOR UPDATE;

-- name: forget_job_attachment
UPDATE fax_jobs SET tiff_key = NULL, revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status IN ('completed', 'failed')
RETURNING id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
          tx_result, revision, created_at, delivered_at;
