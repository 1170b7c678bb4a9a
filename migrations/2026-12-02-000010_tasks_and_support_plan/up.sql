-- A case's follow-ups: who does what by when. Notes are identity-grade and sealed like identities.
-- A task belongs to the case's organisation; `version` is its ETag, `updated_at` its sync time.
CREATE TABLE tasks (
    id               uuid PRIMARY KEY,
    victim_id        uuid NOT NULL REFERENCES victims (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    kind             text NOT NULL CHECK (kind IN ('assessment', 'case_plan', 'follow_up', 'service', 'safety_check')),
    due_on           date NOT NULL,
    assignee_id      uuid NOT NULL REFERENCES users (id),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
    completed_at     timestamptz,
    notes_key_id     text,
    notes_nonce      bytea,
    notes_ciphertext bytea,
    version          integer NOT NULL DEFAULT 1,
    create_digest    bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid NOT NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       uuid NOT NULL REFERENCES users (id),
    CHECK ((status = 'done') = (completed_at IS NOT NULL)),
    CHECK ((notes_key_id IS NULL) = (notes_nonce IS NULL) AND (notes_nonce IS NULL) = (notes_ciphertext IS NULL))
);
CREATE INDEX tasks_by_victim ON tasks (victim_id, id);
CREATE INDEX tasks_by_organization ON tasks (organization_id, id);
-- "What is due": open tasks by assignee and date, the dashboard's question.
CREATE INDEX tasks_open_by_assignee ON tasks (assignee_id, due_on) WHERE status = 'open';

-- A case's support plan (HTCDS "Support Plan"): goals or planned services, each of a type, with
-- objectives and an action plan (identity-grade text, sealed as one document), a planned and an
-- actual end date, and a status.
CREATE TABLE support_plan_goals (
    id               uuid PRIMARY KEY,
    victim_id        uuid NOT NULL REFERENCES victims (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    kind             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('planned', 'in_progress', 'achieved', 'discontinued')),
    planned_end_on   date NOT NULL,
    actual_end_on    date,
    text_key_id      text,
    text_nonce       bytea,
    text_ciphertext  bytea,
    version          integer NOT NULL DEFAULT 1,
    create_digest    bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid NOT NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       uuid NOT NULL REFERENCES users (id),
    CHECK ((text_key_id IS NULL) = (text_nonce IS NULL) AND (text_nonce IS NULL) = (text_ciphertext IS NULL))
);
CREATE INDEX support_plan_goals_by_victim ON support_plan_goals (victim_id, id);
