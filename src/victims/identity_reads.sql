-- Reads of one person's identity, or of identity-grade text about them, oldest first: single
-- reads name the victim as their target, lists name it among `victim_ids`, referral reasons name
-- it as `victim_id`, and task notes and plan texts name their records. A read by another
-- organisation is filed in both logs, as two events alike but for the log: one row per read here.
WITH tasks_of AS (SELECT coalesce(array_agg(id::text), '{}') AS ids FROM tasks WHERE victim_id = $1),
     goals_of AS (SELECT coalesce(array_agg(id::text), '{}') AS ids FROM support_plan_goals WHERE victim_id = $1)
SELECT DISTINCT ON (e.occurred_at, e.actor_user_id, e.request_id, e.action, e.details::text)
       e.occurred_at AS at, e.actor_user_id AS user_id, e.actor_role AS role, u.organization_id,
       CASE
           WHEN e.action = 'victim.subject_access' THEN 'subject_access'
           WHEN e.details ? 'assistance_notes' THEN 'assistance_notes'
           WHEN e.details ? 'referral_reason' THEN 'referral_reason'
           WHEN e.details ? 'task_notes' THEN 'task_notes'
           WHEN e.details ? 'support_plan_goals' THEN 'support_plan_goals'
           ELSE 'identity'
       END AS what
FROM audit_events e
LEFT JOIN users u ON u.id = e.actor_user_id
CROSS JOIN tasks_of
CROSS JOIN goals_of
WHERE e.action IN ('victim.identity_read', 'victim.subject_access')
  AND ((e.target_type = 'victim' AND e.target_id = $1)
       OR e.details -> 'victim_ids' ? $1::text
       OR e.details ->> 'victim_id' = $1::text
       OR e.details -> 'task_notes' ?| tasks_of.ids
       OR e.details -> 'support_plan_goals' ?| goals_of.ids)
ORDER BY e.occurred_at, e.actor_user_id, e.request_id, e.action, e.details::text
