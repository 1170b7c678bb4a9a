-- Separation of duties (DESIGN section 3): admins issue single-use enrolment tokens instead of
-- choosing passwords, and caseworker access waits for a second person's approval.

-- NULL until the person redeems their enrolment token (and again after a reset is issued).
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
-- Set while a caseworker's new or reset credential waits for approval: the account cannot log in.
ALTER TABLE users ADD COLUMN awaiting_approval boolean NOT NULL DEFAULT false;
-- Who issued the token behind the current password (NULL: set by the person at bootstrap). An
-- approval is refused when one party's credential descends from the other's.
ALTER TABLE users ADD COLUMN credential_issued_by uuid REFERENCES users (id);

CREATE TABLE enrolments (
    -- SHA-256 of the token; the token itself is shown once, to the admin who issued it.
    token_hash    bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id),
    purpose       text NOT NULL CHECK (purpose IN ('enrolment', 'reset')),
    issued_by     uuid NOT NULL REFERENCES users (id),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    redeemed_at   timestamptz,
    -- A newer token for the same person replaces this one.
    superseded_at timestamptz
);
CREATE INDEX enrolments_user_idx ON enrolments (user_id, issued_at DESC);

CREATE TABLE access_grants (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    kind            text NOT NULL CHECK (kind IN ('new_caseworker', 'promotion', 're_enable', 'credential_reset')),
    requested_by    uuid NOT NULL REFERENCES users (id),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused', 'withdrawn')),
    decided_by      uuid REFERENCES users (id),
    decided_at      timestamptz,
    reason          text CHECK (length(reason) <= 500),
    -- The database itself holds the two-person rule: nobody approves or refuses their own request
    -- or their own access (withdrawing one's own request is the only exception).
    CHECK (requested_by <> user_id OR kind = 'second_factor'),
    CHECK (decided_by IS NULL OR decided_by <> user_id),
    CHECK (decided_by IS NULL OR decided_by <> requested_by OR status = 'withdrawn'),
    CHECK ((status = 'pending') = (decided_by IS NULL))
);
CREATE UNIQUE INDEX access_grants_one_pending ON access_grants (user_id) WHERE status = 'pending';
CREATE INDEX access_grants_org_idx ON access_grants (organization_id, id);

-- Changing one's own password ends one's other sessions.
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check
    CHECK (revoked_reason IN ('logout', 'refresh_reuse', 'user_changed', 'password_changed'));
