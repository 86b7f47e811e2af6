-- Stored documents (Fax.to files, faxto_documents): their page previews. A job's own document is
-- fax_jobs' (fax_jobs/sql/documents.sql).

-- name: preview_pending
SELECT EXISTS (SELECT 1 FROM faxto_documents WHERE id = $1::bigint AND preview_status = 'pending');

-- name: preview_ready
-- The rendered page count replaces the upload's estimate: Fax.to prices by it.
UPDATE faxto_documents
SET preview_status = 'ready', preview_error = '', total_pages = $2::int, updated_at = now()
WHERE id = $1::bigint
RETURNING id;

-- name: preview_failed
UPDATE faxto_documents SET preview_status = 'failed', preview_error = $2::text, updated_at = now()
WHERE id = $1::bigint
RETURNING id;
