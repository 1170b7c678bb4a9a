DROP TABLE audit_events;
DROP FUNCTION audit_events_refuse_change();
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE organizations;
