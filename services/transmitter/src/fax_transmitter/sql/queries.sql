-- name: claim_attempt
-- Committed before dialling: a worker that dies mid-call leaves the job 'processing', never dialled twice.
UPDATE fax_jobs
SET status = 'processing', attempts = attempts + 1, revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status = 'pending' AND tiff_key IS NOT NULL AND attempts < retries
RETURNING id, account_id, request, to_number, from_number, tiff_key, pages, attempts, retries, created_at;

-- name: attempt_succeeded
UPDATE fax_jobs
SET status = 'completed', tx_result = $3::jsonb, delivered_at = now(), error_message = '',
    revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status = 'processing' AND attempts = $2::int
RETURNING account_id;

-- name: attempt_failed
-- $4: true when attempts remain and the failure is worth retrying.
UPDATE fax_jobs
SET status = CASE WHEN $4::bool THEN 'pending' ELSE 'failed' END,
    tx_result = $3::jsonb, error_message = $3::jsonb ->> 'error_message',
    revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status = 'processing' AND attempts = $2::int
RETURNING account_id;

-- name: due_retries
SELECT id FROM fax_jobs
WHERE status = 'pending' AND tiff_key IS NOT NULL AND attempts > 0 AND attempts < retries
  AND updated_at <= now() - make_interval(secs => $1::int)
ORDER BY updated_at
LIMIT 100;
