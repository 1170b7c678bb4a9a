-- A case moving to another organisation with the person (a repatriation from Dakar to Lima). On
-- acceptance the receiver owns the case under a case number of its own; the sender keeps a
-- read-only case file without the identity, and this row is the history.
CREATE TABLE transfers (
    id                   uuid PRIMARY KEY,
    victim_id            uuid NOT NULL REFERENCES victims (id),
    from_organization_id uuid NOT NULL REFERENCES organizations (id),
    from_user_id         uuid NOT NULL REFERENCES users (id),
    to_organization_id   uuid NOT NULL REFERENCES organizations (id),
    reason               text NOT NULL CHECK (reason IN ('additional_services_required', 'migration_or_change_of_location', 'other')),
    status               text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled')),
    from_case_number     integer NOT NULL,
    to_case_number       integer,
    decline_reason       text CHECK (decline_reason IN ('no_capacity', 'service_not_offered', 'not_eligible', 'victim_declined', 'duplicate', 'other')),
    decided_at           timestamptz,
    decided_by           uuid REFERENCES users (id),
    create_digest        bytea NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (from_organization_id <> to_organization_id),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((status = 'accepted') = (to_case_number IS NOT NULL))
);
-- At most one transfer of a case waits at a time.
CREATE UNIQUE INDEX transfers_one_pending ON transfers (victim_id) WHERE status = 'pending';
CREATE INDEX transfers_by_victim ON transfers (victim_id, from_organization_id) WHERE status = 'accepted';
CREATE INDEX transfers_from ON transfers (from_organization_id, id);
CREATE INDEX transfers_to ON transfers (to_organization_id, id);
