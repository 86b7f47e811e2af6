-- Which request a job carries: 1 as submitted, one more each time a queued fax is changed (PUT/POST/PATCH). A render
-- is of one request, so the fetcher's guards compare this, never `revision`: that is the row's version (Kazoo's
-- revision), which every transition moves, the fetcher's own document_ready and the transmitter's claim included.
ALTER TABLE fax_jobs ADD COLUMN request_revision integer NOT NULL DEFAULT 1;
