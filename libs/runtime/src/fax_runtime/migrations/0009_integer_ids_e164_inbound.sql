-- Integer fax ids for the dialects whose texts show integers, and received faxes' called numbers in E.164.

-- Fax.to's fax_job_id, history and incoming ids, VoipNow's fax id. Identity columns: the database numbers every row
-- whichever API made it, including the rows already there, and a sequence never hands a number out twice, so an id
-- stays unique per installation after its fax is deleted. The uuid stays the key every service uses; only the
-- dialects translate.
ALTER TABLE fax_jobs ADD COLUMN int_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE fax_jobs ADD CONSTRAINT fax_jobs_int_id UNIQUE (int_id);

ALTER TABLE inbound_faxes ADD COLUMN int_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE inbound_faxes ADD CONSTRAINT inbound_faxes_int_id UNIQUE (int_id);

-- Called numbers are stored in E.164 from now on (fax_runtime.numbers). Faxes received before were stored as the
-- trunk delivered them (12048134700) though they were routed to '+' and the digits: that is the number they reached.
UPDATE inbound_faxes SET to_number = '+' || regexp_replace(to_number, '[^0-9]', '', 'g')
WHERE to_number NOT LIKE '+%' AND to_number ~ '[0-9]';
