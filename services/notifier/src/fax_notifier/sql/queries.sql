-- The notifier's SQL (loaded by fax_notifier.store).

-- name: job_for_notification
SELECT j.id, j.int_id, j.account_id, j.status, j.request, j.to_number, j.from_number, j.attempts, j.pages, j.tiff_key,
       j.error_message, j.tx_result, f.settings AS faxbox_settings
FROM fax_jobs j
LEFT JOIN faxboxes f ON f.id = j.request ->> 'faxbox_id' AND f.account_id = j.account_id
WHERE j.id = $1::uuid;

-- name: faxbox_settings
SELECT settings FROM faxboxes WHERE id = $1::text AND account_id = $2::text;

-- name: inbound_for_notification
SELECT rx_result, created_at FROM inbound_faxes WHERE id = $1::uuid;

-- name: account_callback_url
-- The Fax.to API-settings callback: receive callbacks of faxes to the account's numbers go there.
SELECT NULLIF(callback_url, '') FROM faxto_settings WHERE account_id = $1::text;

-- name: plan_subject
-- A subject (job:<id>, inbound:<id>, event:<id>) is planned once, by its event or by the reconciler, whichever comes
-- first; its deliveries are planned in the same transaction, so a planned subject has all of them.
INSERT INTO notified_subjects (subject) VALUES ($1::text)
ON CONFLICT (subject) DO NOTHING;

-- name: plan_delivery
INSERT INTO notification_deliveries
    (subject, event_id, channel, recipient, kind, account_id, job_id, payload, give_up_at, status, last_error,
     finished_at)
VALUES ($1::text, $2::uuid, $3::text, $4::text, $5::text, $6::text, $7::uuid, $8::jsonb,
        now() + make_interval(secs => $9::double precision), $10::text, $11::text,
        CASE WHEN $10::text = 'pending' THEN NULL ELSE now() END)
ON CONFLICT (subject, channel, recipient) DO NOTHING
RETURNING id;

-- name: claim_delivery
UPDATE notification_deliveries
SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2::double precision)
WHERE id = $1::bigint AND status = 'pending' AND next_attempt_at <= now()
RETURNING id, delivery_key, event_id, channel, recipient, kind, account_id, job_id, payload, attempts,
          give_up_at <= now() AS expired;

-- name: claim_due
UPDATE notification_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2::double precision)
FROM (
    SELECT id FROM notification_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1::integer
    FOR UPDATE SKIP LOCKED
) due
WHERE d.id = due.id
RETURNING d.id, d.delivery_key, d.event_id, d.channel, d.recipient, d.kind, d.account_id, d.job_id, d.payload,
          d.attempts, d.give_up_at <= now() AS expired;

-- name: record_attempt
INSERT INTO notification_attempts (delivery_id, attempt, outcome, detail)
VALUES ($1::bigint, $2::integer, $3::text, $4::text);

-- name: finish_delivery
UPDATE notification_deliveries
SET status = $2::text, last_error = $3::text, finished_at = now()
WHERE id = $1::bigint AND status = 'pending';

-- name: reschedule_delivery
-- Never past give_up_at, so the last retry happens at the deadline rather than silently after it.
UPDATE notification_deliveries
SET last_error = $2::text,
    next_attempt_at = LEAST(now() + make_interval(secs => $3::double precision), give_up_at)
WHERE id = $1::bigint AND status = 'pending';

-- name: callback_secret
SELECT callback_secret FROM accounts WHERE id = $1::text;

-- name: unnotified_jobs
-- Jobs that finished between $1 and $2 with nothing planned for them: their outcome's event never reached us.
SELECT j.id, j.account_id, j.status, j.attempts, j.pages, j.error_message,
       coalesce((j.tx_result ->> 'result_code')::int, 0) AS result_code
FROM fax_jobs j
WHERE j.status IN ('completed', 'failed') AND j.updated_at > $1::timestamptz AND j.updated_at <= $2::timestamptz
  AND NOT EXISTS (SELECT 1 FROM notified_subjects s WHERE s.subject = 'job:' || j.id::text)
ORDER BY j.updated_at;

-- name: unnotified_receptions
-- Receptions that ended between $1 and $2 with nothing planned for them.
SELECT i.id, i.account_id, i.faxbox_id, i.status, i.from_number, i.to_number, i.pages, i.tiff_key, i.error_message,
       i.completed_at
FROM inbound_faxes i
WHERE i.status IN ('received', 'failed') AND i.completed_at > $1::timestamptz AND i.completed_at <= $2::timestamptz
  AND NOT EXISTS (SELECT 1 FROM notified_subjects s WHERE s.subject = 'inbound:' || i.id::text)
ORDER BY i.completed_at;
