-- Pending referrals unanswered past their urgency's time (emergency an hour, urgent a day,
-- routine a week), each noticed once.
WITH late AS (
    SELECT r.id, r.victim_id, r.from_organization_id, r.to_organization_id, r.urgency, r.created_at
    FROM referrals r
    WHERE r.status = 'pending'
      AND r.created_at < now() - CASE r.urgency
          WHEN 'emergency' THEN interval '1 hour'
          WHEN 'urgent' THEN interval '1 day'
          ELSE interval '7 days' END
      -- Noticed in an earlier round: not locked again. Every round would otherwise lock (and log)
      -- every referral ever left unanswered, and hold them from the caseworkers answering them.
      AND NOT EXISTS (
          SELECT 1 FROM webhook_notices n
          WHERE n.kind = 'referral.overdue' AND n.record_id = r.id AND n.due = (r.created_at AT TIME ZONE 'UTC')::date)
    ORDER BY r.id
    -- A batch at a time ($1): a backlog is worked through in several transactions.
    LIMIT $1
    -- A referral being answered at this moment is left to the next round.
    FOR UPDATE OF r SKIP LOCKED
), noticed AS (
    INSERT INTO webhook_notices (kind, record_id, due)
    SELECT 'referral.overdue', id, (created_at AT TIME ZONE 'UTC')::date FROM late
    ON CONFLICT DO NOTHING
    RETURNING record_id
)
SELECT late.* FROM late JOIN noticed ON noticed.record_id = late.id
