-- Fax.to API settings (the callback URL), page previews of uploaded files, and operators' balance credits.

-- The API settings: one per account, as sub-users share their parent's account, balance and numbers.

CREATE TABLE faxto_settings (
    account_id    text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    callback_url  text NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Page previews of uploaded Fax.to documents, drawn by the fetcher from the document rendered as it will be
-- faxed (fax.document.stored.v1). 'none': uploaded before previews existed, drawn when first asked for.
ALTER TABLE faxto_documents
    ADD COLUMN preview_status text NOT NULL DEFAULT 'none'
        CHECK (preview_status IN ('none', 'pending', 'ready', 'failed')),
    ADD COLUMN preview_error text NOT NULL DEFAULT '';

-- Money an operator added to (or took back from) an account's balance: the record behind every top-up.
CREATE TABLE balance_credits (
    id          bigserial PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    amount      numeric(14, 4) NOT NULL,
    note        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX balance_credits_account ON balance_credits (account_id, created_at);
