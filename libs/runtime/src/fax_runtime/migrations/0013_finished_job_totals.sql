-- Finished jobs counted as they finish, for the fax_jobs gauge: a /metrics scrape reads the few unfinished jobs and
-- a running total instead of counting the whole history.
--
-- Triggers record each change in the number of completed or failed jobs as a row of fax_job_total_changes, and each
-- scrape folds the rows recorded so far into fax_job_totals (jobs_by_state in fax_api's queries). A row apiece keeps
-- both cheap whatever the load: inserts never wait on each other, and a statement that finishes or deletes many
-- jobs (an account deleted) adds as many rows, where updating one total per job would rewrite the same row over and
-- over within its transaction. Submissions and other changes insert nothing. Until the next scrape the rows wait,
-- a few dozen bytes per job.

-- One row: folds take its lock, so two scrapes at once fold every recorded change exactly once.
CREATE TABLE fax_job_totals (
    single     boolean PRIMARY KEY DEFAULT true CHECK (single),
    completed  bigint NOT NULL,
    failed     bigint NOT NULL
);

CREATE TABLE fax_job_total_changes (
    status  text NOT NULL CHECK (status IN ('completed', 'failed')),
    change  integer NOT NULL
);

-- Counted with writers held off, so that no job finishes between the count and the triggers.
LOCK TABLE fax_jobs IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO fax_job_totals (completed, failed)
SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') FROM fax_jobs;

CREATE FUNCTION record_finished_job_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.status IN ('completed', 'failed') THEN
            INSERT INTO fax_job_total_changes (status, change) VALUES (OLD.status, -1);
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.status IN ('completed', 'failed') THEN
            INSERT INTO fax_job_total_changes (status, change) VALUES (NEW.status, 1);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- Jobs are inserted unfinished and leave a finished state only when deleted, but every path is counted.
CREATE TRIGGER fax_jobs_count_inserted
    AFTER INSERT ON fax_jobs
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed'))
    EXECUTE FUNCTION record_finished_job_change();

CREATE TRIGGER fax_jobs_count_changed
    AFTER UPDATE OF status ON fax_jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND (OLD.status IN ('completed', 'failed') OR NEW.status IN ('completed', 'failed')))
    EXECUTE FUNCTION record_finished_job_change();

CREATE TRIGGER fax_jobs_count_deleted
    AFTER DELETE ON fax_jobs
    FOR EACH ROW WHEN (OLD.status IN ('completed', 'failed'))
    EXECUTE FUNCTION record_finished_job_change();
