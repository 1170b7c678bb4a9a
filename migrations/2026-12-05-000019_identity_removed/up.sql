-- A patch that removes the identity keeps the case's notes, reasons and plan texts: its clients
-- forget the identity only (D160). An erasure still forgets every identity-grade text.
ALTER TABLE sight_changes
    DROP CONSTRAINT sight_changes_forget_check,
    ADD CONSTRAINT sight_changes_forget_check CHECK (forget IN ('identity', 'identity_only', 'record')),
    DROP CONSTRAINT sight_changes_reason_check,
    ADD CONSTRAINT sight_changes_reason_check
        CHECK (reason IN ('identity_erased', 'identity_removed', 'consent_withdrawn', 'transferred', 'restricted', 'referral_ended'));

-- Tombstones that patches wrote before, announced as erasures, say what they meant now, for the
-- clients that have not applied them yet. An erasure writes its tombstones and its audit event
-- (`victim.erase`) in one transaction, so at one `now()`; a tombstone without such an event came
-- from a patch. (A case erased twice has two such events.)
UPDATE sight_changes s
   SET forget = 'identity_only', reason = 'identity_removed'
 WHERE s.reason = 'identity_erased'
   AND NOT EXISTS (
       SELECT 1 FROM audit_events a
        WHERE a.action = 'victim.erase' AND a.outcome = 'success' AND a.target_type = 'victim'
          AND a.target_id = s.victim_id AND a.occurred_at = s.created_at);
