-- Claims up to the batch size (second parameter) of due deliveries: their next attempt moves a
-- lease (first parameter, seconds) ahead, so no other process takes them meanwhile; rows another
-- process is claiming are skipped, not waited for.
UPDATE webhook_deliveries d
SET next_attempt_at = now() + make_interval(secs => $1)
FROM (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) due
WHERE d.id = due.id
RETURNING d.id, d.event_id, d.webhook_id, d.attempts
