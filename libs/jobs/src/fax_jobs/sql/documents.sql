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

-- The render a job's row names, in any state (its PDF copy and previews are made after it is recorded). FOR SHARE
-- waits out a change or delete that locked the row (change_queued_job, delete_*, remove_job_attachment): the answer
-- is what they committed, and they remove the replaced render's objects only after that.
-- name: recorded_render
SELECT tiff_key, pages FROM fax_jobs WHERE id = $1::uuid AND tiff_key IS NOT NULL FOR SHARE;

-- name: document_failed
UPDATE fax_jobs
SET status = 'failed', error_message = $2::text,
    tx_result = tx_result || jsonb_build_object('success', false, 'error_message', $2::text),
    revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status IN ('attaching_files', 'pending') AND tiff_key IS NULL
  AND request_revision = $3::int
RETURNING account_id;

-- name: stalled_documents
-- Queued jobs whose document nobody prepared $1 seconds after they were submitted, changed or last re-driven: their
-- fax.job.submitted was lost (dead-lettered, or gone with the broker's queues). Each is stamped for the fetcher that
-- takes it (SKIP LOCKED: another fetcher's pass takes other rows, and none takes it again for $1 seconds), which
-- prepares it as if the event had come; a render recorded meanwhile makes that a no-op (job_to_prepare).
UPDATE fax_jobs SET updated_at = now()
WHERE id IN (
    SELECT id FROM fax_jobs
    WHERE status IN ('attaching_files', 'pending') AND tiff_key IS NULL
      AND updated_at < now() - make_interval(secs => $1::int)
    ORDER BY updated_at
    LIMIT $2::int
    FOR UPDATE SKIP LOCKED
)
RETURNING id, account_id;
