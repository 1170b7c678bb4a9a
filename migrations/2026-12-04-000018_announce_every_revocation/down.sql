ALTER TABLE organizations ENABLE TRIGGER organizations_kind_changed;
ALTER TABLE users ENABLE TRIGGER users_deleted;
ALTER TABLE users ENABLE TRIGGER users_changed;
ALTER TABLE sessions ENABLE TRIGGER sessions_deleted;
ALTER TABLE sessions ENABLE TRIGGER sessions_revoked;
DROP TRIGGER users_truncated ON users;
DROP TRIGGER sessions_truncated ON sessions;
