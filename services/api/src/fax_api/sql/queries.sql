-- name: account_for_token
SELECT account_id FROM auth_tokens
WHERE token_sha256 = $1::bytea AND (expires_at IS NULL OR expires_at > now());

-- name: account_exists
SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1::text);

-- name: insert_job
INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries)
VALUES ($1::uuid, $2::text, $3::text, $4::jsonb, $5::text, $6::text, $7::int)
RETURNING id, account_id, status, request, to_number, from_number, retries, attempts, pages, tx_result,
          revision, created_at, delivered_at;

-- name: get_job
SELECT id, account_id, status, request, to_number, from_number, retries, attempts, pages, tx_result,
       revision, created_at, delivered_at
FROM fax_jobs
WHERE account_id = $1::text AND id = $2::uuid AND status = ANY($3::text[]);

-- name: list_jobs
SELECT id, account_id, status, request, to_number, from_number, retries, attempts, pages, tx_result,
       revision, created_at, delivered_at
FROM fax_jobs
WHERE account_id = $1::text AND status = ANY($2::text[])
ORDER BY created_at DESC, id DESC
LIMIT $3::int;

-- name: seed_get
SELECT value FROM devstack_seed WHERE key = $1::text;

-- name: seed_put
INSERT INTO devstack_seed (key, value) VALUES ($1::text, $2::text);

-- name: insert_account
INSERT INTO accounts (id, name) VALUES ($1::text, $2::text);

-- name: insert_token
INSERT INTO auth_tokens (token_sha256, account_id) VALUES ($1::bytea, $2::text);

-- name: insert_faxbox
INSERT INTO faxboxes (id, account_id, name, smtp_email, settings)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::jsonb);

-- name: insert_number
INSERT INTO phone_numbers (e164, account_id, faxbox_id) VALUES ($1::text, $2::text, $3::text);
