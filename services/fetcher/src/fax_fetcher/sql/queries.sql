-- name: job_to_prepare
SELECT id, account_id, status, request, revision FROM fax_jobs
WHERE id = $1::uuid AND status IN ('attaching_files', 'pending') AND tiff_key IS NULL;

-- name: document_ready
UPDATE fax_jobs
SET tiff_key = $2::text, pages = $3::int, status = 'pending', revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status IN ('attaching_files', 'pending') AND tiff_key IS NULL
  -- The job was changed (PATCH/POST) while this document rendered: its own event renders the new one.
  AND revision = $4::int
RETURNING account_id;

-- name: document_failed
UPDATE fax_jobs
SET status = 'failed', error_message = $2::text,
    tx_result = tx_result || jsonb_build_object('success', false, 'error_message', $2::text),
    revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status IN ('attaching_files', 'pending') AND tiff_key IS NULL AND revision = $3::int
RETURNING account_id;
