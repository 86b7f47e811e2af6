-- A job's document, as the fetcher prepares it. A render is of one request (request_revision); `revision` is only
-- the row's version, which every transition moves (document_ready here, the transmitter's claim, ...), so no guard
-- here compares it.

-- name: job_to_prepare
SELECT id, account_id, status, request, request_revision FROM fax_jobs
WHERE id = $1::uuid AND status IN ('attaching_files', 'pending') AND tiff_key IS NULL;

-- The first render of the job's current request to finish is recorded; every other render (of a request since
-- replaced, a second delivery of the same one) finds tiff_key set or request_revision moved on, and no row names it.
-- name: document_ready
UPDATE fax_jobs
SET tiff_key = $2::text, pages = $3::int, status = 'pending', revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status IN ('attaching_files', 'pending') AND tiff_key IS NULL
  AND request_revision = $4::int
RETURNING account_id;

-- name: document_failed
UPDATE fax_jobs
SET status = 'failed', error_message = $2::text,
    tx_result = tx_result || jsonb_build_object('success', false, 'error_message', $2::text),
    revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status IN ('attaching_files', 'pending') AND tiff_key IS NULL
  AND request_revision = $3::int
RETURNING account_id;
