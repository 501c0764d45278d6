-- reprocess_candidates --
-- Unfinished receipts of one source received over 10 minutes ago, oldest first, at most $2
-- (ops reprocess: docs/operations/sql/stale_receipts.sql).
SELECT source, external_id, enqueued_at, task_name, reprocess_generation, correlation_id
FROM processed_events
WHERE source = $1 AND processed_at IS NULL AND received_at < now() - interval '10 minutes'
ORDER BY received_at
LIMIT $2
