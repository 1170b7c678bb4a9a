-- Closing and reopening a case, with its reasons: the history stays, one row per closure.
CREATE TABLE case_closures (
    id              bigserial PRIMARY KEY,
    victim_id       uuid NOT NULL REFERENCES victims (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    reason          text NOT NULL,
    closed_at       timestamptz NOT NULL DEFAULT now(),
    closed_by       uuid NOT NULL REFERENCES users (id),
    reopen_reason   text,
    reopened_at     timestamptz,
    reopened_by     uuid REFERENCES users (id),
    CHECK ((reopened_at IS NULL) = (reopened_by IS NULL) AND (reopened_at IS NULL) = (reopen_reason IS NULL))
);
CREATE INDEX case_closures_by_victim ON case_closures (victim_id, id);
