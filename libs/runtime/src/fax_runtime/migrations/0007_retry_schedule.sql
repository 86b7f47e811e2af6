-- When a failed attempt may be retried: the delay depends on why it failed (busy, no answer, ...).
ALTER TABLE fax_jobs ADD COLUMN next_attempt_at timestamptz;
