-- Indexes that keep listings and the services' sweeps as fast over a year of history as over an empty database
-- (bench/history_bench.py, docs/PERFORMANCE.md). Kazoo's listings need none: they read fax_jobs_account_status and
-- inbound_faxes_account_status in page order, one state at a time (page_jobs).
--
-- No id in these indexes: a listing finds its start_key's row by the primary key, and with id in an index a
-- prepared statement's generic plan may look for it there instead, scanning all the account's entries. Rows created
-- at the same instant (one VoipNow send to many numbers) are put in id order by a small sort.

-- Fax.to's history lists every job of the account, whatever its state, newest first.
CREATE INDEX fax_jobs_account_created ON fax_jobs (account_id, created_at DESC);

-- Fax.to counts an account's received faxes (all, or those to one of its numbers) from the index alone.
DROP INDEX inbound_faxes_account_status;
CREATE INDEX inbound_faxes_account_status ON inbound_faxes (account_id, status, created_at DESC) INCLUDE (to_number);

-- Jobs not finished yet, a few among the many finished ones: the transmitter's sweep (due_jobs) and the /metrics
-- gauge read only these.
CREATE INDEX fax_jobs_unfinished ON fax_jobs (status) WHERE status IN ('attaching_files', 'pending', 'processing');
