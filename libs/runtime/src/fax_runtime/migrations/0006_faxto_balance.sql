-- Fax.to users (email + scrypt password + api key, sub-users under a parent), their uploaded documents, the
-- account's cash balance and one charge per job sent through a dialect that bills.
--
-- Billing: a send reserves the cost (balance - cost, refused when it would go negative) in the same transaction
-- as the job insert. The trigger below settles the reservation when the job becomes 'completed' and gives the money
-- back when it becomes 'failed' or is deleted before it finished, whichever process makes that change.

CREATE TABLE account_balances (
    account_id  text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    balance     numeric(14, 4) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE faxto_users (
    id               bigserial PRIMARY KEY,
    account_id       text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    parent_id        bigint REFERENCES faxto_users (id) ON DELETE CASCADE,
    email            text NOT NULL,
    password_scrypt  text NOT NULL,
    api_key          text NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (email = lower(email))
);
CREATE UNIQUE INDEX faxto_users_email ON faxto_users (email);

CREATE TABLE faxto_documents (
    id                 bigserial PRIMARY KEY,
    account_id         text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id            bigint NOT NULL REFERENCES faxto_users (id) ON DELETE CASCADE,
    filename_uploaded  text NOT NULL,
    file_extension     text NOT NULL,
    content_type       text NOT NULL,
    object_key         text NOT NULL,
    filesize           integer NOT NULL,
    total_pages        integer NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX faxto_documents_account ON faxto_documents (account_id, id);

-- No foreign key to fax_jobs: a deleted job's charge stays, released, as the record of what happened.
CREATE TABLE balance_charges (
    job_id       uuid PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    amount       numeric(14, 4) NOT NULL CHECK (amount >= 0),
    state        text NOT NULL DEFAULT 'reserved' CHECK (state IN ('reserved', 'settled', 'released')),
    reserved_at  timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz
);
CREATE INDEX balance_charges_account ON balance_charges (account_id, state);

CREATE FUNCTION settle_balance_charge() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    released numeric(14, 4);
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = 'completed' THEN
        UPDATE balance_charges SET state = 'settled', closed_at = now()
        WHERE job_id = NEW.id AND state = 'reserved';
    ELSIF (TG_OP = 'UPDATE' AND NEW.status = 'failed') OR TG_OP = 'DELETE' THEN
        -- Only a reserved charge is given back, once: the state guard makes a repeated change a no-op.
        UPDATE balance_charges SET state = 'released', closed_at = now()
        WHERE job_id = OLD.id AND state = 'reserved'
        RETURNING amount INTO released;
        IF released IS NOT NULL THEN
            UPDATE account_balances SET balance = balance + released, updated_at = now()
            WHERE account_id = OLD.account_id;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER fax_jobs_settle_charge
    AFTER UPDATE OF status ON fax_jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('completed', 'failed'))
    EXECUTE FUNCTION settle_balance_charge();

CREATE TRIGGER fax_jobs_release_charge
    AFTER DELETE ON fax_jobs
    FOR EACH ROW EXECUTE FUNCTION settle_balance_charge();

-- Numbers provisioned through Fax.to from the shipped inventory; phone_numbers routes their inbound faxes.
CREATE TABLE faxto_numbers (
    id               bigserial PRIMARY KEY,
    account_id       text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    e164             text NOT NULL UNIQUE REFERENCES phone_numbers (e164) ON DELETE CASCADE,
    did_group_id     integer NOT NULL,
    expiration_date  date NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX faxto_numbers_account ON faxto_numbers (account_id, id);
