-- Tombstones of removed identities read as they did before this migration.
UPDATE sight_changes SET forget = 'identity' WHERE forget = 'identity_only';
UPDATE sight_changes SET reason = 'identity_erased' WHERE reason = 'identity_removed';
ALTER TABLE sight_changes
    DROP CONSTRAINT sight_changes_forget_check,
    ADD CONSTRAINT sight_changes_forget_check CHECK (forget IN ('identity', 'record')),
    DROP CONSTRAINT sight_changes_reason_check,
    ADD CONSTRAINT sight_changes_reason_check
        CHECK (reason IN ('identity_erased', 'consent_withdrawn', 'transferred', 'restricted', 'referral_ended'));
