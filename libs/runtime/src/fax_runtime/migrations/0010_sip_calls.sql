-- The answered call of an attempt in progress, and of a reception, as data: its SIP dialog (Call-ID, tags, remote
-- target, route set, CSeq, our Contact) and the media ports it holds. A transmitter killed mid-call sends no BYE
-- and the far end keeps streaming; whoever learns the process is gone (its successor on the same SIP address at
-- start, or the sweeper when the lease runs out) sends the BYE from this.
ALTER TABLE fax_jobs ADD COLUMN sip_call jsonb;
ALTER TABLE inbound_faxes ADD COLUMN sip_call jsonb;
