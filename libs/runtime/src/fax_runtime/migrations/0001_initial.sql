-- Accounts, their auth tokens, faxboxes and numbers; outbound fax jobs; the transactional outbox.

CREATE TABLE accounts (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Tokens are stored as SHA-256 digests: a database dump never yields a usable token.
CREATE TABLE auth_tokens (
    token_sha256  bytea PRIMARY KEY,
    account_id    text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz
);

CREATE TABLE faxboxes (
    id           text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL,
    smtp_email   text NOT NULL UNIQUE,
    custom_smtp_email_address text UNIQUE,
    settings     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE phone_numbers (
    e164        text PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    faxbox_id   text REFERENCES faxboxes (id) ON DELETE SET NULL
);

-- Values the embedded default generates once and must return unchanged on every later start.
CREATE TABLE devstack_seed (
    key    text PRIMARY KEY,
    value  text NOT NULL
);

CREATE TABLE fax_jobs (
    id              uuid PRIMARY KEY,
    account_id      text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status          text NOT NULL
                    CHECK (status IN ('attaching_files', 'pending', 'processing', 'completed', 'failed')),
    -- The Kazoo document as submitted (document, names, numbers, notifications, callback, ...).
    request         jsonb NOT NULL,
    to_number       text NOT NULL,
    from_number     text NOT NULL DEFAULT '',
    retries         integer NOT NULL DEFAULT 1 CHECK (retries >= 1),
    attempts        integer NOT NULL DEFAULT 0,
    tiff_key        text,
    pages           integer,
    error_message   text NOT NULL DEFAULT '',
    tx_result       jsonb NOT NULL DEFAULT '{}',
    revision        integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX fax_jobs_account_status ON fax_jobs (account_id, status, created_at DESC);

-- Transactional outbox: a row commits with the state change that caused it; the relay publishes it.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    routing_key  text NOT NULL,
    payload      bytea NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Consumers record the events they have handled, so a redelivery changes nothing.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
