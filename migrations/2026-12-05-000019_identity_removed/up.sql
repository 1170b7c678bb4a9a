-- A patch that removes the identity keeps the case's notes, reasons and plan texts: its clients
-- forget the identity only (D160). An erasure still forgets every identity-grade text.
ALTER TABLE sight_changes
    DROP CONSTRAINT sight_changes_forget_check,
    ADD CONSTRAINT sight_changes_forget_check CHECK (forget IN ('identity', 'identity_only', 'record')),
    DROP CONSTRAINT sight_changes_reason_check,
    ADD CONSTRAINT sight_changes_reason_check
        CHECK (reason IN ('identity_erased', 'identity_removed', 'consent_withdrawn', 'transferred', 'restricted', 'referral_ended'));
