-- db_connections --
-- This database's client connections by application (each role names itself:
-- hotelly-public, hotelly-worker, hotelly-cli) and state.
SELECT coalesce(nullif(application_name, ''), '(none)') AS application,
       coalesce(state, 'unknown') AS state, count(*)::int AS connections
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
GROUP BY 1, 2
ORDER BY 1, 2

-- db_capacity --
-- The server's connection limit, the slots of it kept for superusers, and the client
-- connections of every database together (what the limit counts).
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved_connections,
       (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend')
           AS server_connections

-- db_long_transactions --
-- This database's transactions open longer than $1 seconds, oldest first: their state
-- ("idle in transaction" is a client that went away mid-transaction) and what they wait
-- for. Never the query text: its values may be a guest's.
SELECT pid, coalesce(nullif(application_name, ''), '(none)') AS application, state,
       wait_event_type, wait_event,
       extract(epoch FROM now() - xact_start)::int AS transaction_seconds,
       extract(epoch FROM now() - state_change)::int AS state_seconds
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND xact_start < now() - make_interval(secs => $1)
ORDER BY xact_start

-- db_lock_waits --
-- This database's sessions waiting for a lock, one row per session blocking each
-- (pg_blocking_pids), with the relation waited on: for a row lock, the table whose row it
-- is (the waiter holds that row's tuple lock while it waits for the holder's transaction).
SELECT w.pid AS blocked_pid,
       coalesce(nullif(w.application_name, ''), '(none)') AS blocked_application,
       b.pid AS blocking_pid,
       coalesce(nullif(b.application_name, ''), '(none)') AS blocking_application,
       b.state AS blocking_state, w.wait_event_type, w.wait_event,
       (SELECT l.relation::regclass::text
        FROM pg_locks l
        WHERE l.pid = w.pid AND l.relation IS NOT NULL
          AND (NOT l.granted OR l.locktype = 'tuple')
        ORDER BY l.granted
        LIMIT 1) AS relation,
       extract(epoch FROM now() - w.state_change)::int AS waiting_seconds
FROM pg_stat_activity w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE w.datname = current_database()
ORDER BY waiting_seconds DESC, w.pid, b.pid
