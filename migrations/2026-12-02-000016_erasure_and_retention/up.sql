-- When a victim's data key was destroyed and their identity-grade values with it (see
-- privacy::vault). The case file stays, identity-free.
ALTER TABLE victims ADD COLUMN erased_at timestamptz;

-- An organisation's retention schedule: identities (and notes, reasons, plans) of a case closed
-- this many months ago are erased. NULL: kept until erased by hand.
ALTER TABLE organizations ADD COLUMN erase_identities_after_months smallint
    CHECK (erase_identities_after_months BETWEEN 1 AND 1200);
-- When the schedule applies: a new or shorter one only after a grace period, so that nobody can
-- erase a year of closed cases within the hour by setting one month.
ALTER TABLE organizations ADD COLUMN retention_effective_at timestamptz;

-- A case the schedule must not erase (nor may anyone by hand) while the hold stands.
CREATE TABLE legal_holds (
    victim_id uuid PRIMARY KEY REFERENCES victims (id) ON DELETE CASCADE,
    basis text NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now(),
    placed_by uuid NOT NULL REFERENCES users (id)
);
