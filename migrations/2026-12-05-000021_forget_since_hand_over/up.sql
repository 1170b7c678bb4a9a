-- A referral to a former owner of the case ended: its clients delete the record and fetch it
-- again, which serves what the former owner keeps (the case file it handed over and its history
-- up to then), where `record` made them delete that too (D171).
ALTER TABLE sight_changes
    DROP CONSTRAINT sight_changes_forget_check,
    ADD CONSTRAINT sight_changes_forget_check
        CHECK (forget IN ('identity', 'identity_only', 'record', 'since_hand_over'));
