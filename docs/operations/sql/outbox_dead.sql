-- Outbox rows set aside after 10 failed attempts to enqueue their tasks: a fact (a reply to
-- send, a notice, a hold's expiry task) that nothing will deliver until an operator acts.
-- last_error says why (never personal data). Fix the cause, then give each row one more
-- try: python -m app ops outbox-retry ID
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/outbox_dead.sql
--  or: python -m app ops outbox-dead   (exit 1 when it finds anything)
SELECT id, event_type, aggregate_type, aggregate_id, attempts, last_error, correlation_id,
       created_at, dead_at
FROM outbox_events
WHERE dead_at IS NOT NULL
ORDER BY dead_at;
