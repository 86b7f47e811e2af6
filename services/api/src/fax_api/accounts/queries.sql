-- Accounts, users, API keys and auth tokens (Kazoo's user_auth / api_auth). Loaded by fax_api.accounts.store.

-- seconds_left in the database's own clock: a cached lookup (accounts/token_cache.py) never outlives the token.
-- name: account_for_token
SELECT account_id, extract(epoch FROM expires_at - now())::double precision AS seconds_left FROM auth_tokens
WHERE token_sha256 = $1::bytea AND (expires_at IS NULL OR expires_at > now());

-- name: insert_account
INSERT INTO accounts (id, name, api_key) VALUES ($1::text, $2::text, $3::text)
RETURNING id, name, api_key;

-- name: account_api_key
SELECT api_key FROM accounts WHERE id = $1::text;

-- name: replace_api_key
UPDATE accounts SET api_key = $2::text WHERE id = $1::text RETURNING api_key;

-- name: account_for_api_key
SELECT id FROM accounts WHERE api_key = $1::text;

-- name: insert_auth_token
INSERT INTO auth_tokens (token_sha256, account_id, user_id, method, expires_at)
VALUES ($1::bytea, $2::text, $3::text, $4::text,
        CASE WHEN $5::double precision IS NULL THEN NULL ELSE now() + make_interval(secs => $5::double precision) END);

-- name: delete_expired_tokens
DELETE FROM auth_tokens WHERE account_id = $1::text AND expires_at < now();

-- Kazoo's credentials identify a user only together with an account name or one of the account's numbers.
-- name: users_for_credentials
SELECT u.id, u.account_id
FROM users u
JOIN accounts a ON a.id = u.account_id
WHERE CASE WHEN $2::text = 'sha' THEN u.sha1_credentials ELSE u.md5_credentials END = lower($1::text)
  AND (lower(a.name) = lower($3::text)
       OR a.id IN (SELECT account_id FROM phone_numbers WHERE e164 = $4::text));

-- name: insert_user
INSERT INTO users (id, account_id, username, email, first_name, last_name,
                   password_scrypt, md5_credentials, sha1_credentials)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text)
RETURNING id, account_id, username, email, first_name, last_name, revision;

-- name: get_user
SELECT id, account_id, username, email, first_name, last_name, revision
FROM users WHERE account_id = $1::text AND id = $2::text;

-- name: list_users
SELECT id, account_id, username, email, first_name, last_name, revision
FROM users WHERE account_id = $1::text AND id >= $2::text
ORDER BY id
LIMIT $3::int;

-- The password hashes change only when a new password is given (NULL keeps them).
-- name: update_user
UPDATE users SET
    username = $3::text, email = $4::text, first_name = $5::text, last_name = $6::text,
    password_scrypt = coalesce($7::text, password_scrypt),
    md5_credentials = coalesce($8::text, md5_credentials),
    sha1_credentials = coalesce($9::text, sha1_credentials),
    revision = revision + 1, updated_at = now()
WHERE account_id = $1::text AND id = $2::text
RETURNING id, account_id, username, email, first_name, last_name, revision;

-- name: delete_user
DELETE FROM users WHERE account_id = $1::text AND id = $2::text
RETURNING id, account_id, username, email, first_name, last_name, revision;

-- Tokens obtained with the old key go with it.
-- name: revoke_api_auth_tokens
DELETE FROM auth_tokens WHERE account_id = $1::text AND method = 'api_auth';

-- The embedded default's demo tenant (tables only the embedded default uses).
-- name: demo_seed
SELECT key, value FROM devstack_seed;

-- name: demo_seed_put
INSERT INTO devstack_seed (key, value) VALUES ($1::text, $2::text)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;

-- name: demo_lock
LOCK TABLE devstack_seed IN EXCLUSIVE MODE;

-- name: demo_insert_number
INSERT INTO phone_numbers (e164, account_id, faxbox_id) VALUES ($1::text, $2::text, $3::text);
