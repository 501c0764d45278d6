-- outbox_claim_due --
-- Lease up to $1 rows due for relaying, soonest first, for $2 seconds; rows another relay
-- holds are skipped.
UPDATE outbox_events o SET lease_until = now() + make_interval(secs => $2)
FROM (
    SELECT id FROM outbox_events
    WHERE enqueued_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()
      AND (lease_until IS NULL OR lease_until < now())
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) AS due
WHERE o.id = due.id
RETURNING o.id, o.event_type, o.payload, o.correlation_id

-- outbox_claim_rows --
-- Lease these rows (just written by the caller) for $2 seconds, if still to relay.
UPDATE outbox_events SET lease_until = now() + make_interval(secs => $2)
WHERE id = ANY ($1::bigint[]) AND enqueued_at IS NULL AND dead_at IS NULL
  AND (lease_until IS NULL OR lease_until < now())
RETURNING id, event_type, payload, correlation_id

-- outbox_mark_enqueued --
-- These rows' tasks exist (or they need none).
UPDATE outbox_events SET enqueued_at = now(), attempts = attempts + 1, lease_until = NULL
WHERE id = ANY ($1::bigint[]) AND enqueued_at IS NULL

-- outbox_mark_failed --
-- These rows' tasks could not be enqueued ($2: why, per row): back off 5 s × 2^attempts
-- (at most 1 h); the $3-th failed attempt sets the row aside as dead.
UPDATE outbox_events o
SET attempts = o.attempts + 1,
    last_error = failed.error,
    lease_until = NULL,
    next_attempt_at = now() + least(3600, 5 * power(2, o.attempts)) * interval '1 second',
    dead_at = CASE WHEN o.attempts + 1 >= $3 THEN now() END
FROM unnest($1::bigint[], $2::text[]) AS failed (id, error)
WHERE o.id = failed.id AND o.enqueued_at IS NULL
RETURNING o.id, o.attempts, o.dead_at IS NOT NULL AS dead

-- outbox_revive --
-- Give a dead row one more try (ops outbox-retry): due now, not leased.
UPDATE outbox_events SET dead_at = NULL, next_attempt_at = now(), lease_until = NULL
WHERE id = $1 AND dead_at IS NOT NULL
RETURNING id

-- outbox_row_state --
-- Where one outbox row stands (ops outbox-retry's answer).
SELECT id, enqueued_at, attempts, last_error, dead_at FROM outbox_events WHERE id = $1
