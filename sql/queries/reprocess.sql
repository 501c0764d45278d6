-- reprocess_candidates --
-- Unfinished receipts of one source older than 10 minutes (docs/operations/sql).
SELECT external_id FROM processed_events
WHERE source = $1 AND processed_at IS NULL AND received_at < now() - interval '10 minutes'
ORDER BY received_at
LIMIT $2

-- next_reprocess_generation --
-- Take the next generation for a receipt's re-enqueued task.
UPDATE processed_events SET reprocess_generation = reprocess_generation + 1
WHERE source = $1 AND external_id = $2 AND processed_at IS NULL
RETURNING reprocess_generation
