-- Fax.to's "API settings": the URL an account's delivery receipts and receive callbacks are posted to.
-- One per account: sub-users share their parent's account, balance and numbers, so they share this too.

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
