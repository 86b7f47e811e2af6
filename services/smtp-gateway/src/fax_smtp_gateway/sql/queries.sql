-- name: faxbox_for_domain
-- The faxbox a mail domain names: its generated address (<id>.<domain>) or the custom address it claimed.
-- A custom address may be a whole address (fax@example.com) or a domain; both are matched.
SELECT f.id, f.account_id, f.name, f.settings, u.email AS owner_email
FROM faxboxes f
LEFT JOIN users u ON u.id = f.settings ->> 'owner_id' AND u.account_id = f.account_id
WHERE lower(f.smtp_email) = lower($1::text)
   OR lower(f.custom_smtp_email_address) = lower($1::text)
   OR lower(f.custom_smtp_email_address) = lower($2::text)
LIMIT 1;

-- name: log_refusal
INSERT INTO smtplog (id, account_id, faxbox_id, faxbox_name, from_address, to_address, number, content_type,
                     filename, errors, job_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: log_accepted
-- A mail that queued a fax: its entry names the fax and has no errors (written in the job's transaction).
INSERT INTO smtplog (id, account_id, faxbox_id, faxbox_name, from_address, to_address, number, content_type,
                     filename, errors, job_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '[]', $10);
