-- Notifications: one row per (event, channel, recipient) so a redelivered event sends nothing new, every attempt
-- logged, retries scheduled here and picked up by the notifier's sweeper.

-- Callbacks are signed with a per-account secret; gen_random_uuid() is a strong random source built into Postgres.
ALTER TABLE accounts
    ADD COLUMN callback_secret text NOT NULL
    DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

CREATE TABLE notification_deliveries (
    id               bigserial PRIMARY KEY,
    event_id         uuid NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('email', 'sms', 'callback')),
    recipient        text NOT NULL,
    kind             text NOT NULL,
    account_id       text NOT NULL,
    job_id           uuid,
    -- What to send, rendered when sent: template context, callback fields, ...
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    -- A claimed row's next_attempt_at is pushed past a lease: a notifier that dies mid-send is retried later.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    give_up_at       timestamptz NOT NULL,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (event_id, channel, recipient)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_job ON notification_deliveries (job_id);

CREATE TABLE notification_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   bigint NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    detail        text NOT NULL DEFAULT '',
    attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_attempts_delivery ON notification_attempts (delivery_id);
