-- outbox_pending --
-- Outbox rows not yet handed to Cloud Tasks, oldest first.
SELECT id, event_type, aggregate_id, payload FROM outbox_events
WHERE enqueued_at IS NULL
ORDER BY id
LIMIT $1

-- outbox_mark_enqueued --
-- These rows' tasks exist (or they need none).
UPDATE outbox_events SET enqueued_at = now(), attempts = attempts + 1
WHERE id = ANY ($1::bigint[]) AND enqueued_at IS NULL
