-- Users and account API keys (Kazoo's user_auth / api_auth), where tokens came from, and faxbox addresses that
-- are unique whatever their case.

-- Kazoo's pvt_api_key: 64 hex characters, shown back to the account by GET /api_key, so it is kept as issued.
ALTER TABLE accounts
    ADD COLUMN api_key text NOT NULL
    DEFAULT encode(sha256((gen_random_uuid()::text || gen_random_uuid()::text)::bytea), 'hex');
CREATE UNIQUE INDEX accounts_api_key ON accounts (api_key);
CREATE INDEX accounts_name_lower ON accounts (lower(name));

CREATE TABLE users (
    id                text PRIMARY KEY,
    account_id        text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Lower-cased: Kazoo's credentials hash is md5("username:password") of the lower-cased username.
    username          text NOT NULL,
    email             text NOT NULL DEFAULT '',
    first_name        text NOT NULL DEFAULT '',
    last_name         text NOT NULL DEFAULT '',
    -- scrypt for dialects that send the password itself; md5/sha1 of "username:password" for Kazoo's user_auth,
    -- which only ever sends that hash (Kazoo keeps the same two as pvt_md5_auth / pvt_sha1_auth).
    password_scrypt   text NOT NULL,
    md5_credentials   text NOT NULL,
    sha1_credentials  text NOT NULL,
    revision          integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (username = lower(username))
);
CREATE UNIQUE INDEX users_account_username ON users (account_id, username);
CREATE INDEX users_md5_credentials ON users (md5_credentials);
CREATE INDEX users_sha1_credentials ON users (sha1_credentials);

ALTER TABLE auth_tokens
    ADD COLUMN user_id text REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN method text NOT NULL DEFAULT 'seed' CHECK (method IN ('seed', 'user_auth', 'api_auth'));
CREATE INDEX auth_tokens_account ON auth_tokens (account_id);

-- The SMTP gateway finds a faxbox by either address; mail domains and, in practice, local parts ignore case.
ALTER TABLE faxboxes ADD COLUMN revision integer NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX faxboxes_smtp_email_lower ON faxboxes (lower(smtp_email));
CREATE UNIQUE INDEX faxboxes_custom_address_lower ON faxboxes (lower(custom_smtp_email_address));
CREATE INDEX faxboxes_account ON faxboxes (account_id, id);
CREATE INDEX phone_numbers_faxbox ON phone_numbers (faxbox_id);
