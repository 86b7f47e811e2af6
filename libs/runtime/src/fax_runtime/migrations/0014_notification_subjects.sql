-- Notifications are planned once per subject (a finished job, a received fax), whichever planned them first: the
-- outcome's event, or the notifier's reconciler when the event was lost. A delivery has an id receivers can
-- deduplicate by (X-Fax-Delivery-Id), the same on every retry of it.

-- 'job:<uuid>', 'inbound:<uuid>', or 'event:<uuid>' for what only an event knows (a rejected email).
ALTER TABLE notification_deliveries ADD COLUMN subject text;
UPDATE notification_deliveries SET subject = 'event:' || event_id::text;
ALTER TABLE notification_deliveries ALTER COLUMN subject SET NOT NULL;
ALTER TABLE notification_deliveries DROP CONSTRAINT notification_deliveries_event_id_channel_recipient_key;
ALTER TABLE notification_deliveries ADD CONSTRAINT notification_deliveries_subject_channel_recipient_key
    UNIQUE (subject, channel, recipient);
ALTER TABLE notification_deliveries ADD COLUMN delivery_key uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX notification_deliveries_key ON notification_deliveries (delivery_key);

-- Every subject whose notifications were planned (none at all, when nobody asked to be told).
CREATE TABLE notified_subjects (
    subject     text PRIMARY KEY,
    planned_at  timestamptz NOT NULL DEFAULT now()
);
-- What finished before this release was notified by then.
INSERT INTO notified_subjects (subject)
SELECT 'job:' || id::text FROM fax_jobs WHERE status IN ('completed', 'failed')
UNION ALL
SELECT 'inbound:' || id::text FROM inbound_faxes WHERE status IN ('received', 'failed');

-- The reconcilers' scans: finished jobs and receptions by when they ended, queued jobs still without a document.
CREATE INDEX fax_jobs_finished ON fax_jobs (updated_at) WHERE status IN ('completed', 'failed');
CREATE INDEX inbound_faxes_finished ON inbound_faxes (completed_at) WHERE status IN ('received', 'failed');
CREATE INDEX fax_jobs_unrendered ON fax_jobs (updated_at)
    WHERE tiff_key IS NULL AND status IN ('attaching_files', 'pending');
