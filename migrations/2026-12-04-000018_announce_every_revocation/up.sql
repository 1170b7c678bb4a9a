-- Revocations that migration 17's triggers did not announce (D140).

-- A TRUNCATE ends sessions as surely as a DELETE, but row triggers do not fire for it: statement
-- triggers announce it too. (TRUNCATE users needs CASCADE, which truncates sessions as well; either
-- trigger is enough.)
CREATE TRIGGER sessions_truncated AFTER TRUNCATE ON sessions FOR EACH STATEMENT
    EXECUTE FUNCTION haven_announce_revocation();
CREATE TRIGGER users_truncated AFTER TRUNCATE ON users FOR EACH STATEMENT
    EXECUTE FUNCTION haven_announce_revocation();

-- With session_replication_role = replica (a restore with --disable-triggers, a logical replication
-- subscriber's apply worker, a bulk change by hand), ordinary triggers stay silent. An announcement
-- costs every process no more than one empty memory, and a missed one keeps a revoked session
-- accepted for up to HAVEN_SESSION_CACHE_MS: these fire always.
ALTER TABLE sessions ENABLE ALWAYS TRIGGER sessions_revoked;
ALTER TABLE sessions ENABLE ALWAYS TRIGGER sessions_deleted;
ALTER TABLE sessions ENABLE ALWAYS TRIGGER sessions_truncated;
ALTER TABLE users ENABLE ALWAYS TRIGGER users_changed;
ALTER TABLE users ENABLE ALWAYS TRIGGER users_deleted;
ALTER TABLE users ENABLE ALWAYS TRIGGER users_truncated;
ALTER TABLE organizations ENABLE ALWAYS TRIGGER organizations_kind_changed;
