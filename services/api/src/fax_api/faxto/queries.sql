-- Fax.to users and documents, account balances and per-job charges (migration 0006).

-- name: insert_faxto_user
INSERT INTO faxto_users (account_id, parent_id, email, password_scrypt, api_key)
VALUES ($1::text, $2::bigint, $3::text, $4::text, $5::text)
ON CONFLICT (email) DO NOTHING
RETURNING id, account_id, parent_id, email, api_key;

-- name: faxto_user_by_email
SELECT id, account_id, parent_id, email, password_scrypt, api_key FROM faxto_users WHERE email = $1::text;

-- name: faxto_user_by_api_key
SELECT id, account_id, parent_id, email, api_key FROM faxto_users WHERE api_key = $1::text;

-- name: open_balance
INSERT INTO account_balances (account_id, balance) VALUES ($1::text, $2::numeric)
ON CONFLICT (account_id) DO NOTHING;

-- name: balance
SELECT balance FROM account_balances WHERE account_id = $1::text;

-- The conditional UPDATE is the whole guard: two concurrent sends serialise on the row lock, and the second sees
-- the first one's balance, so the balance never goes below zero and no send is charged twice.
-- name: reserve_balance
UPDATE account_balances SET balance = balance - $2::numeric, updated_at = now()
WHERE account_id = $1::text AND balance >= $2::numeric
RETURNING balance;

-- name: insert_charge
INSERT INTO balance_charges (job_id, account_id, amount) VALUES ($1::uuid, $2::text, $3::numeric);

-- name: insert_document
-- Its previews are drawn by the fetcher (fax.document.stored.v1, queued in the same transaction).
INSERT INTO faxto_documents (account_id, user_id, filename_uploaded, file_extension, content_type, object_key,
                             filesize, total_pages, preview_status)
VALUES ($1::text, $2::bigint, $3::text, $4::text, $5::text, $6::text, $7::int, $8::int, 'pending')
RETURNING id, account_id, user_id, filename_uploaded, file_extension, content_type, object_key, filesize,
          total_pages, preview_status, preview_error, created_at, updated_at;

-- name: request_preview
-- A document uploaded before previews existed: have them drawn now (once; the caller queues the event).
UPDATE faxto_documents SET preview_status = 'pending', updated_at = now()
WHERE account_id = $1::text AND id = $2::bigint AND preview_status = 'none'
RETURNING id, object_key;

-- name: get_document
SELECT id, account_id, user_id, filename_uploaded, file_extension, content_type, object_key, filesize, total_pages,
       preview_status, preview_error, created_at, updated_at
FROM faxto_documents WHERE account_id = $1::text AND id = $2::bigint;

-- name: list_documents
SELECT id, account_id, user_id, filename_uploaded, file_extension, content_type, object_key, filesize, total_pages,
       preview_status, preview_error, created_at, updated_at
FROM faxto_documents WHERE account_id = $1::text ORDER BY id DESC LIMIT $2::int;

-- name: delete_document
DELETE FROM faxto_documents WHERE account_id = $1::text AND id = $2::bigint
RETURNING id, object_key, total_pages, preview_status;

-- Jobs of the account whatever API sent them, newest first; Fax.to's history shows Kazoo sends too.
-- name: job_history
SELECT id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
       tx_result, revision, created_at, delivered_at
FROM fax_jobs WHERE account_id = $1::text ORDER BY created_at DESC, id DESC LIMIT $2::int;

-- A job by the integer id Fax.to answered ($2), or by its Kazoo id ($3): the other one is NULL and matches nothing.
-- name: faxto_job
SELECT id, int_id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
       tx_result, revision, created_at, delivered_at
FROM fax_jobs
WHERE account_id = $1::text AND (int_id = $2::bigint OR id = $3::uuid);

-- Received faxes of the account (all, or to one of its numbers), oldest page first as Fax.to pages them.
-- name: count_received
SELECT count(*) FROM inbound_faxes
WHERE account_id = $1::text AND status = 'received' AND ($2::text IS NULL OR to_number = $2::text);

-- name: page_received
-- did_id: the Fax.to number (faxto_numbers.id) the fax came in on, when it was provisioned through Fax.to.
SELECT f.id, f.int_id, f.to_number, f.from_number, f.pages, f.tiff_key, f.pdf_key, f.created_at, n.id AS did_id
FROM inbound_faxes f
LEFT JOIN faxto_numbers n ON n.e164 = f.to_number AND n.account_id = f.account_id
WHERE f.account_id = $1::text AND f.status = 'received' AND ($2::text IS NULL OR f.to_number = $2::text)
ORDER BY f.created_at DESC, f.id DESC
LIMIT $3::int OFFSET $4::int;

-- name: received_fax
SELECT id, account_id, tiff_key, pdf_key FROM inbound_faxes WHERE id = $1::uuid AND status = 'received';

-- A number is taken by whoever inserts it first: phone_numbers' primary key settles concurrent provisioning.
-- name: claim_phone_number
INSERT INTO phone_numbers (e164, account_id) VALUES ($1::text, $2::text)
ON CONFLICT (e164) DO NOTHING
RETURNING e164;

-- name: insert_faxto_number
INSERT INTO faxto_numbers (account_id, e164, did_group_id, expiration_date)
VALUES ($1::text, $2::text, $3::int, (now() + interval '1 month')::date)
RETURNING id, e164, did_group_id, expiration_date, created_at;

-- name: count_numbers
SELECT count(*) FROM faxto_numbers WHERE account_id = $1::text;

-- name: page_numbers
SELECT id, e164, did_group_id, expiration_date, created_at FROM faxto_numbers
WHERE account_id = $1::text ORDER BY id LIMIT $2::int OFFSET $3::int;

-- name: document_by_id
SELECT id, account_id, user_id, filename_uploaded, file_extension, content_type, object_key, filesize, total_pages,
       preview_status, preview_error, created_at, updated_at
FROM faxto_documents WHERE id = $1::bigint;

-- name: faxto_callback_url
SELECT callback_url FROM faxto_settings WHERE account_id = $1::text;

-- name: set_faxto_callback_url
INSERT INTO faxto_settings (account_id, callback_url) VALUES ($1::text, $2::text)
ON CONFLICT (account_id) DO UPDATE SET callback_url = EXCLUDED.callback_url, updated_at = now();

-- name: credit_balance
-- An operator's top-up (or refund, negative): refused, crediting nothing, if it would take the balance below zero.
WITH credited AS (
    UPDATE account_balances SET balance = balance + $2::numeric, updated_at = now()
    WHERE account_id = $1::text AND balance + $2::numeric >= 0
    RETURNING account_id, balance
), recorded AS (
    INSERT INTO balance_credits (account_id, amount, note)
    SELECT account_id, $2::numeric, $3::text FROM credited
)
SELECT balance FROM credited;
