-- One event of an organisation (first parameter) of a kind (second) with its data (third): kept
-- only when a webhook of that organisation is subscribed to the kind, and fanned out to each.
WITH subscribed AS (
    SELECT id FROM webhooks
    WHERE organization_id = $1 AND NOT disabled AND $2 = ANY (events)
), event AS (
    INSERT INTO webhook_events (organization_id, event, payload)
    SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM subscribed)
    RETURNING id
)
INSERT INTO webhook_deliveries (event_id, webhook_id)
SELECT event.id, subscribed.id FROM event CROSS JOIN subscribed
