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
