-- Tombstones for offline clients: a record, or its identity-grade part, left the sight of an
-- organisation (or of one person in it), so clients delete their local copy. Ids and codes only.
CREATE TABLE sight_changes (
    id              bigserial PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    -- Only this person (a restriction that leaves them out), or everyone of the organisation.
    user_id         uuid REFERENCES users (id),
    victim_id       uuid NOT NULL REFERENCES victims (id),
    forget          text NOT NULL CHECK (forget IN ('identity', 'record')),
    reason          text NOT NULL CHECK (reason IN ('identity_erased', 'consent_withdrawn', 'transferred', 'restricted', 'referral_ended')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sight_changes_by_organization ON sight_changes (organization_id, id);
