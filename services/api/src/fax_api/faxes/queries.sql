-- Inbound faxes and the smtplog as the Kazoo faxes API sees them (outbound jobs are fax_jobs': fax_jobs/sql/jobs.sql).
-- Every query is scoped to the caller's account. Lists page by keyset: newest first, start_key is the id of the first
-- row of the page.

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
