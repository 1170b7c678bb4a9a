-- Issue 9: every guarded release is one differentially private measurement, recorded whole in
-- the ledger (a repeated question in the same budget period is answered from it), paid from a
-- renewable allowance per organisation under a deployment-wide cap per period.

-- Rollups of bounded counts (each victim's values bounded, for guarded releases) beside the
-- exact ones (caseworkers' own case load).
ALTER TABLE report_rollup_shapes ADD COLUMN bounded boolean NOT NULL DEFAULT false;

ALTER TABLE report_releases
    ADD COLUMN period    date,              -- first day of the budget period it was paid from
    ADD COLUMN question  text,              -- digest of the canonical question (see reports::release)
    ADD COLUMN rho       double precision NOT NULL DEFAULT 0 CHECK (rho >= 0),
    ADD COLUMN mechanism text,
    ADD COLUMN release   jsonb;             -- what was released: grid, values, margins, statement
CREATE UNIQUE INDEX report_releases_question_idx
    ON report_releases (organization_id, period, question) WHERE question IS NOT NULL;

-- Running totals of the ledger's rho per period and organisation, kept in the same transaction
-- as each ledger row, so a budget check reads a row per organisation instead of the ledger.
CREATE TABLE report_spend (
    period          date NOT NULL,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    rho             double precision NOT NULL CHECK (rho >= 0),
    releases        integer NOT NULL CHECK (releases >= 0),
    PRIMARY KEY (period, organization_id)
);

-- Allowances a host admin set; an organisation without a row has the deployment's default.
CREATE TABLE report_allowances (
    organization_id uuid PRIMARY KEY REFERENCES organizations (id),
    allowance       double precision NOT NULL CHECK (allowance >= 0 AND allowance < 'Infinity'::double precision),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      uuid NOT NULL REFERENCES users (id)
);

-- Spending is recorded per calendar month whatever the budget period; a period's spending is the
-- sum of its months, so changing HAVEN_DP_PERIOD never forgets what was spent.
COMMENT ON COLUMN report_spend.period IS 'first day of the calendar month the releases were made in';

-- Dirty markers per writing transaction. With one marker per partition, a write whose marker
-- insert met an already committed marker did nothing; an upkeep that then deleted that marker and
-- rebuilt without seeing the (still uncommitted) write lost it for good. Now every transaction
-- leaves its own marker, which an upkeep can only delete once it is committed and visible, so
-- the rebuild that deletes it also sees the write.
ALTER TABLE report_rollup_dirty DROP CONSTRAINT report_rollup_dirty_pkey;
ALTER TABLE report_rollup_dirty ADD COLUMN txid bigint NOT NULL DEFAULT txid_current();
ALTER TABLE report_rollup_dirty ADD PRIMARY KEY (organization_id, month, txid);

CREATE OR REPLACE FUNCTION report_rollup_mark_victim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO report_rollup_dirty VALUES (OLD.organization_id, date_trunc('month', OLD.identified_on)::date, txid_current())
            ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO report_rollup_dirty VALUES (NEW.organization_id, date_trunc('month', NEW.identified_on)::date, txid_current())
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION report_rollup_mark_related() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    victim uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.victim_id ELSE NEW.victim_id END;
BEGIN
    INSERT INTO report_rollup_dirty
        SELECT v.organization_id, date_trunc('month', v.identified_on)::date, txid_current() FROM victims v WHERE v.id = victim
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION report_rollup_mark_organization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.shares_statistics IS DISTINCT FROM OLD.shares_statistics THEN
        INSERT INTO report_rollup_dirty
            SELECT DISTINCT NEW.id, date_trunc('month', v.identified_on)::date, txid_current() FROM victims v WHERE v.organization_id = NEW.id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;
