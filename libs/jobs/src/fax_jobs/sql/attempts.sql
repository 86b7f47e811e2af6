-- The attempts to send a job, as the transmitter makes them: claimed, kept alive, reported, ended.

-- name: lock_call_slots
-- Serialises claims that could exceed a limit: one account's calls, and calls to one number (account first,
-- then destination, always in that order, so two claims never wait on each other in a cycle).
SELECT pg_advisory_xact_lock(hashtext('fax-account:' || account_id)),
       pg_advisory_xact_lock(hashtext('fax-destination:' || to_number))
FROM fax_jobs WHERE id = $1::uuid;

-- name: claim_attempt
-- Committed before dialling: a worker that dies mid-call leaves the job 'processing' with a lease that runs out,
-- never dialled twice for one attempt. No claim while the account has $2 calls up or the number is already busy
-- with one of ours; such a job stays 'pending' and the sweeper tries again. The previous attempts' tx_result and the
-- faxbox's media.fax_option come back for the attempt to choose its media by (fax_transmitter.media_policy).
-- pages_sent starts again at 0: it counts the pages the far end confirmed in this attempt (attempt_progress), which
-- is what decides whether an interrupted attempt delivered the fax (reap_abandoned_attempts).
UPDATE fax_jobs j
SET status = 'processing', attempts = attempts + 1, revision = revision + 1, updated_at = now(),
    lease_expires_at = now() + make_interval(secs => $3::int),
    tx_result = tx_result || jsonb_build_object('pages_sent', 0)
WHERE id = $1::uuid AND status = 'pending' AND tiff_key IS NOT NULL AND attempts < retries
  AND (SELECT count(*) FROM fax_jobs a WHERE a.account_id = j.account_id AND a.status = 'processing') < $2::int
  AND NOT EXISTS (SELECT 1 FROM fax_jobs d WHERE d.to_number = j.to_number AND d.status = 'processing')
RETURNING id, account_id, request, to_number, from_number, tiff_key, pages, attempts, retries, created_at, tx_result,
          (SELECT f.settings -> 'media' -> 'fax_option' FROM faxboxes f
           WHERE f.id = j.request ->> 'faxbox_id' AND f.account_id = j.account_id) AS fax_option;

-- name: renew_lease
UPDATE fax_jobs SET lease_expires_at = now() + make_interval(secs => $3::int)
WHERE id = $1::uuid AND status = 'processing' AND attempts = $2::int;

-- name: attempt_progress
-- The pages the far end confirmed so far (each with its MCF), visible on the job while it is sent (Kazoo clients poll
-- outgoing/{id}). Written as each page is confirmed: an attempt whose every page is confirmed here is never dialled
-- again, whatever happens to its call afterwards (reap_abandoned_attempts).
UPDATE fax_jobs SET tx_result = tx_result || jsonb_build_object('pages_sent', $3::int), updated_at = now()
WHERE id = $1::uuid AND status = 'processing' AND attempts = $2::int
RETURNING account_id, pages;

-- name: attempt_answered
-- The attempt's call as data (its SIP dialog, its media ports) while it is up: a transmitter killed mid-call sends no
-- BYE, so whoever finds the attempt abandoned hangs the call up. Tagged with the attempt, so that the next attempt
-- never inherits it; a call whose attempt already ended has nothing to keep.
UPDATE fax_jobs SET sip_call = $3::jsonb || jsonb_build_object('attempt', $2::int)
WHERE id = $1::uuid AND status = 'processing' AND attempts = $2::int;

-- name: reap_abandoned_attempts
-- Attempts whose transmitter is gone: it stopped renewing the lease, or ($1, only at a transmitter's start, before
-- it places a call) its answered call carries the SIP contact we start with: we could bind that address, so the
-- process that held it is dead, and we need not wait for the lease. The attempts the caller itself still runs ($2)
-- are never taken: a lease that ran out while Postgres was away is renewed, and the outcome recorded, by its call.
-- An attempt whose every page the far end confirmed (attempt_progress) delivered the fax: it ends completed, never
-- to be dialled again, though its call ended without its final report. Any other ends as a failed attempt,
-- retried if any remain. The attempt's call comes back (when it was answered) so the far end can be told it ended.
-- Several sweepers at once take different rows (SKIP LOCKED).
UPDATE fax_jobs
SET status = CASE WHEN abandoned.delivered THEN 'completed' WHEN attempts < retries THEN 'pending' ELSE 'failed' END,
    error_message = CASE WHEN abandoned.delivered THEN '' ELSE 'call interrupted: transmitter stopped' END,
    tx_result = tx_result || CASE
        WHEN abandoned.delivered THEN jsonb_build_object(
            'success', true, 'error_message', '',
            'result_text', 'every page confirmed by the far end; the call ended before its last report')
        ELSE jsonb_build_object('success', false, 'error_message', 'call interrupted: transmitter stopped') END,
    delivered_at = CASE WHEN abandoned.delivered THEN now() ELSE delivered_at END,
    revision = revision + 1, updated_at = now(), lease_expires_at = NULL
FROM (
    SELECT id, coalesce(pages > 0 AND (tx_result ->> 'pages_sent')::int >= pages, false) AS delivered
    FROM fax_jobs
    WHERE status = 'processing'
      AND (lease_expires_at < now()
           OR (sip_call -> 'dialog' ->> 'contact' = $1::text AND (sip_call ->> 'attempt')::int = attempts))
      AND id <> ALL($2::uuid[])
    FOR UPDATE SKIP LOCKED
) abandoned
WHERE fax_jobs.id = abandoned.id
RETURNING fax_jobs.id, account_id, attempts, status, tx_result,
          CASE WHEN (sip_call ->> 'attempt')::int = attempts THEN sip_call END AS sip_call;

-- name: attempt_succeeded
UPDATE fax_jobs
SET status = 'completed', tx_result = $3::jsonb, delivered_at = now(), error_message = '', lease_expires_at = NULL,
    revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status = 'processing' AND attempts = $2::int
RETURNING account_id;

-- name: attempt_failed
-- $4: true when attempts remain and the failure is worth retrying, after $5 seconds.
UPDATE fax_jobs
SET status = CASE WHEN $4::bool THEN 'pending' ELSE 'failed' END,
    tx_result = $3::jsonb, error_message = $3::jsonb ->> 'error_message', lease_expires_at = NULL,
    next_attempt_at = CASE WHEN $4::bool THEN now() + make_interval(secs => $5::int) END,
    revision = revision + 1, updated_at = now()
WHERE id = $1::uuid AND status = 'processing' AND attempts = $2::int
RETURNING account_id;

-- name: due_jobs
-- Failed attempts whose retry time has come (next_attempt_at; else $1 s after the failure, as a reaped attempt has
-- none), and ready jobs a call limit held back ($2 seconds ago).
SELECT id FROM fax_jobs
WHERE status = 'pending' AND tiff_key IS NOT NULL AND attempts < retries
  AND CASE WHEN attempts > 0
           THEN coalesce(next_attempt_at, updated_at + make_interval(secs => $1::int)) <= now()
           ELSE updated_at <= now() - make_interval(secs => $2::int) END
ORDER BY updated_at
LIMIT 100;
