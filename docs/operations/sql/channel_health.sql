-- Every channel calendar's sync health. A calendar with an import URL not synced
-- successfully for 30 minutes (counted from its creation when it never synced) is stale:
-- the channel's bookings may be missing here. Check last_error (the channel is down, the
-- URL was rotated there, the feed is too large), then the schedule (/tasks/channels/sync-all).
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/channel_health.sql
--  or: python -m app ops channels   (exit 1 when a calendar is stale or its last sync failed)
SELECT p.code AS property, c.name AS calendar, c.import_url_sealed IS NOT NULL AS imports,
       c.last_success_at, c.last_attempt_at, c.last_error, c.consecutive_failures,
       c.event_count, c.ignored_events,
       c.import_url_sealed IS NOT NULL
           AND coalesce(c.last_success_at, c.created_at) < now() - interval '30 minutes'
           AS stale
FROM calendars c JOIN properties p ON p.id = c.property_id
ORDER BY p.code, c.name;
