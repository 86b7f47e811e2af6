-- Finished jobs counted as they finish, for the fax_jobs gauge: a /metrics scrape reads one row and the few
-- unfinished jobs instead of counting the whole history. Kept by triggers, whichever process changes a job.

-- One row: every change to it takes the same lock, so two transactions finishing jobs of both states (deleting two
-- accounts at once) can never wait on each other in a cycle.
CREATE TABLE fax_job_totals (
    single     boolean PRIMARY KEY DEFAULT true CHECK (single),
    completed  bigint NOT NULL,
    failed     bigint NOT NULL
);

-- Counted with writers held off, so that no job finishes between the count and the triggers.
LOCK TABLE fax_jobs IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO fax_job_totals (completed, failed)
SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') FROM fax_jobs;

CREATE FUNCTION count_finished_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    left_state text;
    entered_state text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        left_state := OLD.status;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        entered_state := NEW.status;
    END IF;
    UPDATE fax_job_totals
    SET completed = completed + (entered_state IS NOT DISTINCT FROM 'completed')::int
                              - (left_state IS NOT DISTINCT FROM 'completed')::int,
        failed = failed + (entered_state IS NOT DISTINCT FROM 'failed')::int
                        - (left_state IS NOT DISTINCT FROM 'failed')::int;
    RETURN NULL;
END;
$$;

-- Jobs are inserted unfinished and leave a finished state only when deleted, but every path is counted.
CREATE TRIGGER fax_jobs_count_inserted
    AFTER INSERT ON fax_jobs
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed'))
    EXECUTE FUNCTION count_finished_jobs();

CREATE TRIGGER fax_jobs_count_changed
    AFTER UPDATE OF status ON fax_jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND (OLD.status IN ('completed', 'failed') OR NEW.status IN ('completed', 'failed')))
    EXECUTE FUNCTION count_finished_jobs();

CREATE TRIGGER fax_jobs_count_deleted
    AFTER DELETE ON fax_jobs
    FOR EACH ROW WHEN (OLD.status IN ('completed', 'failed'))
    EXECUTE FUNCTION count_finished_jobs();
