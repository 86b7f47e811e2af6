-- Inbound faxes (Kazoo's "incoming" while receiving, "inbox" once finished) and the email intake log.

CREATE TABLE inbound_faxes (
    id                 uuid PRIMARY KEY,
    account_id         text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    faxbox_id          text REFERENCES faxboxes (id) ON DELETE SET NULL,
    -- receiving: the call is up (shown under faxes/incoming); received/failed: finished (faxes/inbox).
    status             text NOT NULL CHECK (status IN ('receiving', 'received', 'failed')),
    call_id            text NOT NULL DEFAULT '',
    from_number        text NOT NULL DEFAULT '',
    from_name          text NOT NULL DEFAULT '',
    to_number          text NOT NULL,
    remote_station_id  text NOT NULL DEFAULT '',
    pages              integer NOT NULL DEFAULT 0,
    tiff_key           text,
    pdf_key            text,
    -- spandsp statistics and completion code, in the same shape as an outbound job's tx_result.
    rx_result          jsonb NOT NULL DEFAULT '{}',
    error_message      text NOT NULL DEFAULT '',
    revision           integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz
);
CREATE INDEX inbound_faxes_account_status ON inbound_faxes (account_id, status, created_at DESC);

-- One row per email the SMTP gateway refused or could not turn into a fax (Kazoo's smtplog).
-- account_id is NULL when the mail named no known faxbox: such rows are kept for operators only.
CREATE TABLE smtplog (
    id            uuid PRIMARY KEY,
    account_id    text REFERENCES accounts (id) ON DELETE CASCADE,
    faxbox_id     text REFERENCES faxboxes (id) ON DELETE SET NULL,
    faxbox_name   text NOT NULL DEFAULT '',
    from_address  text NOT NULL DEFAULT '',
    to_address    text NOT NULL DEFAULT '',
    number        text NOT NULL DEFAULT '',
    content_type  text NOT NULL DEFAULT '',
    filename      text NOT NULL DEFAULT '',
    -- Human-readable reasons, in the order they were found.
    errors        jsonb NOT NULL DEFAULT '[]',
    -- The job created from the mail, when intake got that far before failing.
    job_id        uuid REFERENCES fax_jobs (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX smtplog_account_created ON smtplog (account_id, created_at DESC);
