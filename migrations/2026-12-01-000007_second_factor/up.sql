-- Second factor (TOTP, RFC 6238). The shared secret is a credential: sealed like identities, under
-- the identity key ring (re-encrypted by `haven rekey`).
ALTER TABLE users
    ADD COLUMN totp_key_id     text,
    ADD COLUMN totp_nonce      bytea,
    ADD COLUMN totp_ciphertext bytea,
    -- A secret is stored while enrolling; it counts only once a code from it was confirmed.
    ADD COLUMN totp_active     boolean NOT NULL DEFAULT false,
    -- The last time step accepted: a code works once (RFC 6238 section 5.2).
    ADD COLUMN totp_last_step  bigint,
    ADD CHECK (NOT totp_active OR totp_ciphertext IS NOT NULL);

-- Single-use recovery codes, stored as SHA-256 (they are random, 50 bits each).
CREATE TABLE recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id),
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- NULL: the deployment's default (required for caseworkers in production, optional otherwise).
ALTER TABLE organizations ADD COLUMN require_second_factor boolean;

-- A caseworker's new or reset second factor waits for a second person too.
ALTER TABLE access_grants DROP CONSTRAINT access_grants_kind_check;
ALTER TABLE access_grants ADD CONSTRAINT access_grants_kind_check
    CHECK (kind IN ('new_caseworker', 'promotion', 're_enable', 'credential_reset', 'second_factor'));
