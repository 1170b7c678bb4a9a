-- Open tasks that reached their due date (today, UTC) or passed it, each noticed once per due
-- date: a task moved to another day is noticed again when that day comes.
WITH due AS (
    SELECT t.id, t.victim_id, t.organization_id, t.assignee_id, t.kind, t.due_on
    FROM tasks t
    WHERE t.status = 'open' AND t.due_on <= (now() AT TIME ZONE 'UTC')::date
      -- Noticed for this due date in an earlier round: not locked again (as in overdue.sql).
      AND NOT EXISTS (
          SELECT 1 FROM webhook_notices n WHERE n.kind = 'task.due' AND n.record_id = t.id AND n.due = t.due_on)
    ORDER BY t.id
    -- A batch at a time ($1): a backlog is worked through in several transactions.
    LIMIT $1
    -- A task being changed (or its case handed over) at this moment is left to the next round.
    FOR UPDATE OF t SKIP LOCKED
), noticed AS (
    INSERT INTO webhook_notices (kind, record_id, due)
    SELECT 'task.due', id, due_on FROM due
    ON CONFLICT DO NOTHING
    RETURNING record_id
)
SELECT due.* FROM due JOIN noticed ON noticed.record_id = due.id
