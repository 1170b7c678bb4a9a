-- Several Haven processes on one database (issue 16).

-- Every change that may end a session or change what it may do is announced on a channel each
-- process listens to, so its memory of session checks is dropped at once (auth::revocations). A
-- trigger rather than the code that revokes: a change made by another process, by an older
-- version, or by hand in psql is announced too. NOTIFY is delivered at commit, never for a
-- rolled-back change, and repeated notices within one transaction are folded into one.
CREATE FUNCTION haven_announce_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('haven_revocations', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_revoked AFTER UPDATE ON sessions FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
          OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION haven_announce_revocation();
CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions FOR EACH ROW
    EXECUTE FUNCTION haven_announce_revocation();
CREATE TRIGGER users_changed AFTER UPDATE ON users FOR EACH ROW
    WHEN ((OLD.role, OLD.organization_id, OLD.disabled, OLD.token_version)
          IS DISTINCT FROM (NEW.role, NEW.organization_id, NEW.disabled, NEW.token_version))
    EXECUTE FUNCTION haven_announce_revocation();
CREATE TRIGGER users_deleted AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION haven_announce_revocation();
CREATE TRIGGER organizations_kind_changed AFTER UPDATE ON organizations FOR EACH ROW
    WHEN (OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION haven_announce_revocation();

-- Login attempts, per client address and per account, shared by every process: the generic cell
-- rate algorithm, one row per key holding its theoretical arrival time (auth::shared_limits).
-- Keys are an address or a keyed digest of the submitted email, never the email itself.
CREATE TABLE login_limits (
    gate bytea PRIMARY KEY,
    tat timestamptz NOT NULL
);

-- Failures and locks of emails that have no account, so they lock out exactly like real accounts
-- (users.failed_logins, users.locked_until) on every process, and a lockout does not reveal that
-- an account exists. Keyed by the same digest.
CREATE TABLE login_lockouts (
    account_key bytea PRIMARY KEY,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
