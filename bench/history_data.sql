-- A year of history for bench/history_bench.py, loaded set-wise (generate_series, one statement a table) by
-- bench/history_data.py in one session after setseed(), so the same parameters give the same rows.

-- The documents rows carry, in the shapes the services write them (temporary: they go with the session).
-- name: functions
CREATE FUNCTION pg_temp.request_document(id uuid, to_number text, from_number text, faxto boolean)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN faxto THEN jsonb_build_object(
        'to_number', to_number, 'retries', 1,
        'document', jsonb_build_object('method', 'get', 'uploads', jsonb_build_array('jobs/' || id || '/upload-0')),
        'faxto', jsonb_build_object('document_id', 1000 + (hashtext(id::text) & 65535), 'document', 'invoice.pdf',
                                    'user_id', 1))
    ELSE jsonb_build_object(
        'document', jsonb_build_object('url', 'https://docs.example.com/outgoing/' || id || '.pdf', 'method', 'get'),
        'retries', 3, 'from_name', 'Accounts payable', 'from_number', from_number, 'to_name', 'Customer',
        'to_number', to_number, 'fax_identity', from_number, 'fax_header', 'Example Corp',
        'notifications',
        jsonb_build_object('email', jsonb_build_object('send_to', jsonb_build_array('ops@example.com'))))
    END
$$;

CREATE FUNCTION pg_temp.transmission_result(status text, pages int)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status
        WHEN 'completed' THEN jsonb_build_object(
            'success', true, 'error_message', '', 'fax_bad_rows', 0, 'fax_error_correction', true,
            'fax_receiver_id', 'RECEIVER', 'fax_speed', 14400, 'pages_sent', pages, 'time_elapsed', 30 * pages,
            'result_code', 0, 'result_text', 'OK', 'fax_t38_used', false)
        WHEN 'failed' THEN jsonb_build_object(
            'success', false, 'error_message', 'busy', 'pages_sent', 0, 'time_elapsed', 0, 'result_code', 486,
            'result_text', 'Busy Here')
        ELSE '{}' END
$$;

CREATE FUNCTION pg_temp.reception_result(status text, pages int)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status
        WHEN 'received' THEN jsonb_build_object(
            'success', true, 'error_message', '', 'fax_bad_rows', 0, 'fax_error_correction', true,
            'fax_speed', 14400, 'pages_received', pages, 'time_elapsed', 30 * pages, 'result_code', 0,
            'result_text', 'OK', 'fax_t38_used', false)
        WHEN 'failed' THEN jsonb_build_object(
            'success', false, 'error_message', 'far end hung up', 'pages_received', 0, 'result_code', 48,
            'result_text', 'Disconnected after permitted retries')
        ELSE '{}' END
$$;

-- The benchmark account's last day: the rows its calls read in both databases. 600 jobs (the newest 100 still
-- queued), 200 received faxes (the newest 5 still arriving), 50 smtplog rows, a Fax.to user and 3 Fax.to numbers.
-- $1 account, $2 its faxbox, $3 its inbound number, $4 the Fax.to user's api_key.
-- name: recent_numbers
WITH numbers AS (
    INSERT INTO phone_numbers (e164, account_id, faxbox_id)
    SELECT '+1555000' || (2000 + n), $1::text, $2::text FROM generate_series(1, 3) n
    RETURNING e164
)
INSERT INTO faxto_numbers (account_id, e164, did_group_id, expiration_date)
SELECT $1::text, e164, 1, current_date + 30 FROM numbers;

-- name: recent_faxto_user
INSERT INTO faxto_users (account_id, email, password_scrypt, api_key)
VALUES ($1::text, 'bench@example.com', 'not a password', $2::text);

-- name: recent_jobs
INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
                      error_message, tx_result, revision, created_at, updated_at, delivered_at, lease_expires_at,
                      next_attempt_at)
SELECT id, $1::text, status, pg_temp.request_document(id, to_number, from_number, n % 10 = 0), to_number,
       from_number, 3, CASE WHEN tiff_key IS NULL THEN 0 ELSE 1 END, tiff_key, pages,
       CASE WHEN status = 'failed' THEN 'busy' ELSE '' END, pg_temp.transmission_result(status, pages), 3,
       created_at, created_at + interval '2 minutes',
       CASE WHEN status = 'completed' THEN created_at + interval '2 minutes' END,
       CASE WHEN status = 'processing' THEN now() + interval '1 day' END,
       CASE WHEN status = 'pending' AND tiff_key IS NOT NULL THEN now() + interval '1 day' END
FROM (
    SELECT n, gen_random_uuid() AS id, now() - interval '1 day' + n * interval '144 seconds' AS created_at,
           '+1' || (2012000000 + n * 7919 % 7000000) AS to_number, '+15550001000' AS from_number,
           -- 10 wait for their uploads, 60 for the fetcher or a retry, 30 are being sent.
           CASE WHEN n > 590 THEN 'attaching_files' WHEN n > 530 THEN 'pending' WHEN n > 500 THEN 'processing'
                WHEN n % 8 = 0 THEN 'failed' ELSE 'completed' END AS status,
           1 + n % 5 AS pages
    FROM generate_series(1, 600) n
) j
CROSS JOIN LATERAL (
    SELECT CASE WHEN status = 'attaching_files' OR (status = 'pending' AND n % 2 = 0) THEN NULL
                ELSE 'jobs/' || id || '/r3/fax.tif' END AS tiff_key
) k;

-- name: recent_inbound
INSERT INTO inbound_faxes (id, account_id, faxbox_id, status, call_id, from_number, to_number, remote_station_id,
                           pages, tiff_key, pdf_key, rx_result, error_message, revision, created_at, updated_at,
                           completed_at)
SELECT id, $1::text, $2::text, status, 'call-' || id, '+1' || (3125550000 + n), number, 'REMOTE ' || n % 97,
       pages, 'inbound/' || id || '/fax.tif', 'inbound/' || id || '/fax.pdf',
       pg_temp.reception_result(status, pages), CASE WHEN status = 'failed' THEN 'far end hung up' ELSE '' END, 3,
       created_at, created_at + interval '1 minute',
       CASE WHEN status <> 'receiving' THEN created_at + interval '1 minute' END
FROM (
    SELECT n, gen_random_uuid() AS id, now() - interval '1 day' + n * interval '432 seconds' AS created_at,
           CASE WHEN n > 195 THEN 'receiving' WHEN n % 20 = 0 THEN 'failed' ELSE 'received' END AS status,
           CASE WHEN n % 4 = 0 THEN $3::text ELSE '+1555000' || (2001 + n % 3) END AS number, 1 + n % 4 AS pages
    FROM generate_series(1, 200) n
) f;

-- name: recent_smtplog
INSERT INTO smtplog (id, account_id, faxbox_id, faxbox_name, from_address, to_address, number, errors, created_at)
SELECT gen_random_uuid(), $1::text, $2::text, 'Demo faxbox', 'someone' || n || '@elsewhere.example',
       '15550001000@' || $2::text || '.fax.localhost', '15550001000',
       '["the sender is not on the faxbox''s permission list"]', now() - interval '1 day' + n * interval '1728 seconds'
FROM generate_series(1, 50) n;

-- The year before the benchmark account's last day, for $3 accounts. The benchmark account ($1, faxbox $4, number
-- $5) holds a share $2 of it; the others' sizes follow Zipf's law (the k-th holds a share proportional to 1/k^1.1),
-- each with a faxbox, an inbound number and a balance.
-- name: history_accounts
CREATE TEMP TABLE bench_accounts AS
WITH others AS (
    SELECT k, md5('bench-account-' || k) AS account_id, 1 / power((k - 1)::float8, 1.1) AS weight
    FROM generate_series(2, $3::int) k
), shares AS (
    SELECT 1 AS k, $1::text AS account_id, $2::float8 AS share
    UNION ALL
    SELECT k, account_id, (1 - $2::float8) * weight / sum(weight) OVER () FROM others
)
SELECT k, account_id,
       CASE WHEN k = 1 THEN $4::text ELSE md5('bench-faxbox-' || k) END AS faxbox_id,
       CASE WHEN k = 1 THEN $5::text ELSE '+1800' || lpad(k::text, 7, '0') END AS number,
       -- Where the account's share begins on [0, 1): width_bucket(random(), starts) draws an account by its share.
       coalesce(sum(share) OVER (ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS starts
FROM shares;

-- name: history_tenants
WITH new_accounts AS (
    INSERT INTO accounts (id, name, created_at)
    SELECT account_id, 'Bench account ' || k, now() - interval '400 days' FROM bench_accounts WHERE k > 1
    RETURNING id
), new_faxboxes AS (
    INSERT INTO faxboxes (id, account_id, name, smtp_email, settings)
    SELECT faxbox_id, a.id, 'Faxbox ' || k, faxbox_id || '.fax.localhost', '{"retries": 3}'
    FROM bench_accounts JOIN new_accounts a ON a.id = account_id
    RETURNING id, account_id
), new_numbers AS (
    INSERT INTO phone_numbers (e164, account_id, faxbox_id)
    SELECT number, f.account_id, f.id FROM bench_accounts JOIN new_faxboxes f ON f.id = faxbox_id
    RETURNING e164
)
INSERT INTO account_balances (account_id, balance)
SELECT id, 100 FROM new_accounts;

-- $1 jobs, one every (365 days / $1), each for an account drawn by its share, all finished (12 % failed), one in
-- ten sent through Fax.to. Inserted in time order, as they would have been.
-- name: history_jobs
INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
                      error_message, tx_result, revision, created_at, updated_at, delivered_at)
SELECT id, account_id, status, pg_temp.request_document(id, to_number, from_number, faxto), to_number, from_number,
       3, CASE WHEN status = 'failed' THEN 3 ELSE 1 END, 'jobs/' || id || '/r3/fax.tif', pages,
       CASE WHEN status = 'failed' THEN 'busy' ELSE '' END, pg_temp.transmission_result(status, pages), 4,
       created_at, created_at + interval '3 minutes',
       CASE WHEN status = 'completed' THEN created_at + interval '3 minutes' END
FROM (
    SELECT gen_random_uuid() AS id, a.ids[width_bucket(random(), a.starts)] AS account_id,
           now() - interval '366 days' + (i - 1 + random()) * (interval '365 days' / $1::int) AS created_at,
           CASE WHEN random() < 0.12 THEN 'failed' ELSE 'completed' END AS status,
           '+1' || (2012000000 + floor(random() * 7000000000)::bigint) AS to_number,
           '+1555' || lpad(floor(random() * 10000000)::text, 7, '0') AS from_number,
           1 + floor(random() * random() * 20)::int AS pages, random() < 0.1 AS faxto
    FROM (SELECT array_agg(account_id ORDER BY k) AS ids, array_agg(starts ORDER BY k) AS starts
          FROM bench_accounts) a,
         generate_series(1, $1::int) i
) j;

-- Fax.to sends reserved their cost; a finished one settled it or gave it back.
-- name: history_charges
INSERT INTO balance_charges (job_id, account_id, amount, state, reserved_at, closed_at)
SELECT id, account_id, 0.07 * pages, CASE WHEN status = 'completed' THEN 'settled' ELSE 'released' END,
       created_at, updated_at
FROM fax_jobs WHERE request ? 'faxto' AND status IN ('completed', 'failed');

-- Each job's fax.job.submitted row, published long ago.
-- name: history_outbox
INSERT INTO outbox (event_id, routing_key, payload, created_at, sent_at)
SELECT gen_random_uuid(), 'fax.job.submitted.v1',
       convert_to(json_build_object('type', 'fax.job.submitted.v1', 'job_id', id, 'account_id', account_id)::text,
                  'UTF8'),
       created_at, created_at + interval '10 milliseconds'
FROM fax_jobs ORDER BY int_id;

-- $1 received faxes, one every (365 days / $1), to each account's number; the benchmark account's also to its
-- Fax.to numbers.
-- name: history_inbound
INSERT INTO inbound_faxes (id, account_id, faxbox_id, status, call_id, from_number, to_number, remote_station_id,
                           pages, tiff_key, pdf_key, rx_result, error_message, revision, created_at, updated_at,
                           completed_at)
SELECT f.id, b.account_id, b.faxbox_id, f.status, 'call-' || f.id, f.from_number,
       CASE WHEN b.k > 1 OR f.i % 4 = 0 THEN b.number ELSE '+1555000' || (2001 + f.i % 3) END,
       'REMOTE ' || f.i % 997, f.pages, 'inbound/' || f.id || '/fax.tif', 'inbound/' || f.id || '/fax.pdf',
       pg_temp.reception_result(f.status, f.pages), CASE WHEN f.status = 'failed' THEN 'far end hung up' ELSE '' END,
       3, f.created_at, f.created_at + interval '1 minute', f.created_at + interval '1 minute'
FROM (
    SELECT i, gen_random_uuid() AS id, width_bucket(random(), a.starts) AS k,
           now() - interval '366 days' + (i - 1 + random()) * (interval '365 days' / $1::int) AS created_at,
           CASE WHEN random() < 0.05 THEN 'failed' ELSE 'received' END AS status,
           '+1' || (2012000000 + floor(random() * 7000000000)::bigint) AS from_number,
           1 + floor(random() * random() * 10)::int AS pages
    FROM (SELECT array_agg(starts ORDER BY k) AS starts FROM bench_accounts) a, generate_series(1, $1::int) i
) f
JOIN bench_accounts b ON b.k = f.k
ORDER BY f.i;

-- $1 mails the gateway refused, one every (365 days / $1), a tenth of them naming no faxbox at all.
-- name: history_smtplog
INSERT INTO smtplog (id, account_id, faxbox_id, faxbox_name, from_address, to_address, number, errors, created_at)
SELECT gen_random_uuid(), b.account_id, b.faxbox_id, CASE WHEN b.k IS NULL THEN '' ELSE 'Faxbox' END,
       'someone' || i || '@elsewhere.example', '18005550100@unknown.fax.localhost', '18005550100',
       '["the sender is not on the faxbox''s permission list"]', s.created_at
FROM (
    SELECT i, CASE WHEN random() < 0.1 THEN NULL ELSE width_bucket(random(), a.starts) END AS k,
           now() - interval '366 days' + (i - 1 + random()) * (interval '365 days' / $1::int) AS created_at
    FROM (SELECT array_agg(starts ORDER BY k) AS starts FROM bench_accounts) a, generate_series(1, $1::int) i
) s
LEFT JOIN bench_accounts b ON b.k = s.k
ORDER BY s.i;

-- $1 jobs other accounts queued in the last hour (a quarter of them being sent): what the transmitter's sweeper
-- and claims look at. Spread over up to 500 accounts, the largest first.
-- name: history_queued
INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries, attempts, tiff_key, pages,
                      revision, created_at, updated_at, lease_expires_at)
SELECT id, account_id, status, pg_temp.request_document(id, to_number, '+15550009999', false), to_number,
       '+15550009999', 3, CASE WHEN status = 'processing' THEN 1 ELSE 0 END,
       CASE WHEN status = 'attaching_files' THEN NULL ELSE 'jobs/' || id || '/r3/fax.tif' END, 2, 3,
       created_at, created_at, CASE WHEN status = 'processing' THEN now() + interval '1 day' END
FROM (
    SELECT gen_random_uuid() AS id, b.account_id, now() - random() * interval '1 hour' AS created_at,
           (ARRAY['attaching_files', 'pending', 'pending', 'processing'])[1 + i % 4] AS status,
           '+1' || (2012000000 + floor(random() * 7000000000)::bigint) AS to_number
    FROM generate_series(1, $1::int) i
    JOIN bench_accounts b ON b.k = 2 + i % least(500, (SELECT count(*) - 1 FROM bench_accounts))
) q;
