-- Fax.to's "API settings": the URL an account's delivery receipts and receive callbacks are posted to.
-- One per account: sub-users share their parent's account, balance and numbers, so they share this too.

CREATE TABLE faxto_settings (
    account_id    text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    callback_url  text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
