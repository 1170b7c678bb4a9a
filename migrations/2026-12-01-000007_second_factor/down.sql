DELETE FROM access_grants WHERE kind = 'second_factor';
ALTER TABLE access_grants DROP CONSTRAINT access_grants_kind_check;
ALTER TABLE access_grants ADD CONSTRAINT access_grants_kind_check
    CHECK (kind IN ('new_caseworker', 'promotion', 're_enable', 'credential_reset'));
ALTER TABLE organizations DROP COLUMN require_second_factor;
DROP TABLE recovery_codes;
ALTER TABLE users
    DROP COLUMN totp_key_id, DROP COLUMN totp_nonce, DROP COLUMN totp_ciphertext,
    DROP COLUMN totp_active, DROP COLUMN totp_last_step;
