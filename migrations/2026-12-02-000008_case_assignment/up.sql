-- Who works a case. Every case has at least one assigned caseworker of its organisation (the
-- creator by default); caseworkers change the assignment, and every change is audited.
CREATE TABLE case_assignments (
    victim_id       uuid NOT NULL REFERENCES victims (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    assigned_by     uuid NOT NULL REFERENCES users (id),
    PRIMARY KEY (victim_id, user_id)
);
-- "My cases": a caseworker's assignments, newest case last.
CREATE INDEX case_assignments_by_user ON case_assignments (user_id, victim_id);

-- A restricted case (a minor, a high-risk case): its identity reaches only its assigned
-- caseworkers; other caseworkers of the organisation see the case file only. A row of its own,
-- not a column of `victims`, which reports and rollups read and which is at diesel's width limit.
CREATE TABLE restricted_cases (
    victim_id       uuid PRIMARY KEY REFERENCES victims (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    restricted_at   timestamptz NOT NULL DEFAULT now(),
    restricted_by   uuid NOT NULL REFERENCES users (id)
);

-- Cases recorded before assignments existed belong to whoever created them.
INSERT INTO case_assignments (victim_id, user_id, organization_id, assigned_by)
SELECT id, created_by, organization_id, created_by FROM victims;
