DROP TABLE login_lockouts;
DROP TABLE login_limits;
DROP TRIGGER organizations_kind_changed ON organizations;
DROP TRIGGER users_deleted ON users;
DROP TRIGGER users_changed ON users;
DROP TRIGGER sessions_deleted ON sessions;
DROP TRIGGER sessions_revoked ON sessions;
DROP FUNCTION haven_announce_revocation();
