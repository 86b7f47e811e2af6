-- What /metrics reads from Postgres at scrape time. Loaded by fax_api.monitoring.store.

-- name: ping
SELECT true;

-- name: jobs_by_state
-- The fax_jobs gauge: Postgres is the only source of truth for a job's state. Unfinished jobs are counted
-- (fax_jobs_unfinished holds only them); finished ones are running totals, into which the changes recorded since the
-- last scrape are folded here (migration 0013).
WITH recorded AS (
    DELETE FROM fax_job_total_changes RETURNING status, change
), totals AS (
    UPDATE fax_job_totals
    SET completed = completed + coalesce((SELECT sum(change) FROM recorded WHERE status = 'completed'), 0),
        failed = failed + coalesce((SELECT sum(change) FROM recorded WHERE status = 'failed'), 0)
    RETURNING completed, failed
)
SELECT status, count(*) AS jobs FROM fax_jobs
WHERE status IN ('attaching_files', 'pending', 'processing')
GROUP BY status
UNION ALL
SELECT 'completed', completed FROM totals
UNION ALL
SELECT 'failed', failed FROM totals;

-- name: outbox_unsent
SELECT count(*) FROM outbox WHERE sent_at IS NULL;
