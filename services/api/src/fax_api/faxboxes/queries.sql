-- Kazoo faxboxes. Loaded by fax_api.faxboxes.store.

-- name: insert_faxbox
INSERT INTO faxboxes (id, account_id, name, smtp_email, custom_smtp_email_address, settings)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::jsonb)
RETURNING id, account_id, name, smtp_email, custom_smtp_email_address, settings, revision;

-- name: get_faxbox
SELECT id, account_id, name, smtp_email, custom_smtp_email_address, settings, revision
FROM faxboxes WHERE account_id = $1::text AND id = $2::text;

-- name: get_faxbox_for_update
SELECT id, account_id, name, smtp_email, custom_smtp_email_address, settings, revision
FROM faxboxes WHERE account_id = $1::text AND id = $2::text
FOR UPDATE;

-- Keyset paging: ids are the keys, start_key the first id of the page.
-- name: list_faxboxes
SELECT id, account_id, name, smtp_email, custom_smtp_email_address, settings, revision
FROM faxboxes WHERE account_id = $1::text AND id >= $2::text
ORDER BY id
LIMIT $3::int;

-- A custom address may clash with another faxbox's custom or generated one, in any account.
-- name: address_taken
SELECT EXISTS (
    SELECT 1 FROM faxboxes
    WHERE id <> $1::text
      AND (lower(smtp_email) = lower($2::text) OR lower(custom_smtp_email_address) = lower($2::text))
);

-- name: replace_faxbox
UPDATE faxboxes SET
    name = $3::text, custom_smtp_email_address = $4::text, settings = $5::jsonb,
    revision = revision + 1, updated_at = now()
WHERE account_id = $1::text AND id = $2::text
RETURNING id, account_id, name, smtp_email, custom_smtp_email_address, settings, revision;

-- name: unassign_faxbox_numbers
UPDATE phone_numbers SET faxbox_id = NULL WHERE account_id = $1::text AND faxbox_id = $2::text;

-- name: delete_faxbox
DELETE FROM faxboxes WHERE account_id = $1::text AND id = $2::text
RETURNING id, account_id, name, smtp_email, custom_smtp_email_address, settings, revision;
