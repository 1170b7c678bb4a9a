UPDATE sessions SET revoked_reason = 'user_changed' WHERE revoked_reason = 'password_changed';
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check
    CHECK (revoked_reason IN ('logout', 'refresh_reuse', 'user_changed'));
DROP TABLE access_grants;
DROP TABLE enrolments;
ALTER TABLE users DROP COLUMN credential_issued_by;
ALTER TABLE users DROP COLUMN awaiting_approval;
-- Accounts that never set a password cannot log in either way; give them an unusable hash.
UPDATE users SET password_hash = '!' WHERE password_hash IS NULL;
ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL;
