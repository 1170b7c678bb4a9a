-- Foundation: organisations, users, sessions and refresh tokens, and the append-only audit log.
-- Vocabularies are text with CHECK constraints (not PostgreSQL enums) so that adding a value is a
-- plain migration that can run inside a transaction.

CREATE TABLE organizations (
    id                uuid PRIMARY KEY,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind              text NOT NULL CHECK (kind IN ('ngo', 'law_enforcement', 'government', 'health',
                                                    'legal', 'international_organization', 'host')),
    country           char(3) CHECK (country ~ '^[A-Z]{3}$'),
    shares_statistics boolean NOT NULL DEFAULT false,
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'host' OR country IS NOT NULL)
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));
-- Exactly one organisation runs the deployment.
CREATE UNIQUE INDEX organizations_one_host ON organizations ((true)) WHERE kind = 'host';

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('caseworker', 'admin', 'auditor', 'partner')),
    disabled        boolean NOT NULL DEFAULT false,
    -- Bumped on every role change, disable and password reset: access tokens carry it, so older
    -- tokens stop working at once.
    token_version   integer NOT NULL DEFAULT 1,
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_login_at   timestamptz,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_organization_idx ON users (organization_id, id);

-- A session is one login; its refresh tokens form a rotation family.
CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text CHECK (revoked_reason IN ('logout', 'refresh_reuse', 'user_changed'))
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    -- SHA-256 of the opaque token: the token itself is never stored.
    token_hash      bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id      uuid NOT NULL REFERENCES sessions (id),
    issued_at       timestamptz NOT NULL DEFAULT now(),
    used_at         timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE audit_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    -- The organisation whose audit log holds the event; NULL for events that belong to no
    -- organisation (a login attempt for an unknown account), visible to host auditors only.
    organization_id uuid REFERENCES organizations (id),
    actor_user_id   uuid REFERENCES users (id),
    actor_role      text,
    action          text NOT NULL,
    target_type     text,
    target_id       uuid,
    outcome         text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    request_id      text,
    client_address  text,
    -- Ids, codes and counts only: never an identity value.
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_org_idx ON audit_events (organization_id, id DESC);
CREATE INDEX audit_events_target_idx ON audit_events (target_id) WHERE target_id IS NOT NULL;
CREATE INDEX audit_events_actor_idx ON audit_events (actor_user_id) WHERE actor_user_id IS NOT NULL;

-- Append-only: the database itself refuses to change or remove an audit event.
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
