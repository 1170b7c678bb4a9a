UPDATE sight_changes SET forget = 'record' WHERE forget = 'since_hand_over';
ALTER TABLE sight_changes
    DROP CONSTRAINT sight_changes_forget_check,
    ADD CONSTRAINT sight_changes_forget_check CHECK (forget IN ('identity', 'identity_only', 'record'));
