-- property_calendars --
-- A property's calendars with what their export token is made of.
SELECT c.id, c.name, c.rotation, c.import_url_sealed, c.units, c.room_type_id,
       rt.code AS room_type
FROM calendars c JOIN room_types rt ON rt.id = c.room_type_id
WHERE c.property_id = $1
ORDER BY c.name

-- upsert_calendar --
-- Create or update a calendar by (property, name); rewrites only on change, and never
-- touches its rotation or its sync state.
INSERT INTO calendars AS c (property_id, room_type_id, name, import_url_sealed, units,
                            export_digest)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT ON CONSTRAINT calendars_property_id_name_key DO UPDATE
SET room_type_id = excluded.room_type_id, import_url_sealed = excluded.import_url_sealed,
    units = excluded.units, export_digest = excluded.export_digest, updated_at = now()
WHERE (c.room_type_id, c.import_url_sealed, c.units, c.export_digest)
      IS DISTINCT FROM
      (excluded.room_type_id, excluded.import_url_sealed, excluded.units, excluded.export_digest)
RETURNING id

-- rotate_calendar --
-- A new export token for the calendar: the old URL answers 404 from now on.
UPDATE calendars SET rotation = rotation + 1, export_digest = $3, updated_at = now()
WHERE property_id = $1 AND name = $2
RETURNING rotation

-- export_feed --
-- The calendar an export URL names (by its token's SHA-256), and the runs of nights, over
-- $2 days from the inn's today, on which its room type has no unit free for the calendar's
-- channel: that channel's own imported blocks are not counted (it knows its bookings;
-- echoing them back is how loops start). Gaps and islands by date; no row: no such URL.
WITH cal AS (
    SELECT c.id, c.room_type_id, c.exported_unavailable,
           (now() AT TIME ZONE p.timezone)::date AS today
    FROM calendars c JOIN properties p ON p.id = c.property_id
    WHERE c.export_digest = $1
), own AS (
    SELECT n.date, sum(n.qty) AS qty
    FROM cal JOIN blocks b ON b.calendar_id = cal.id AND b.status = 'active'
    JOIN block_nights n ON n.block_id = b.id
    WHERE n.date >= cal.today AND n.date < cal.today + $2::integer
    GROUP BY n.date
), closed AS (
    SELECT a.date, a.date - (row_number() OVER (ORDER BY a.date))::integer AS run
    FROM cal JOIN ari_days a ON a.room_type_id = cal.room_type_id
    LEFT JOIN own ON own.date = a.date
    WHERE a.date >= cal.today AND a.date < cal.today + $2::integer
      AND a.inv_total - a.inv_held - a.inv_booked - (a.inv_blocked - coalesce(own.qty, 0)) <= 0
), runs AS (
    SELECT min(date) AS first_night, max(date) + 1 AS morning_free FROM closed GROUP BY run
)
SELECT cal.id, cal.exported_unavailable,
       coalesce((SELECT array_agg(first_night ORDER BY first_night) FROM runs), '{}')
           AS first_nights,
       coalesce((SELECT array_agg(morning_free ORDER BY first_night) FROM runs), '{}')
           AS mornings_free
FROM cal

-- record_export --
-- What the channel saw when it fetched our feed (only written when it changed).
UPDATE calendars SET exported_unavailable = $2, exported_at = now()
WHERE id = $1 AND exported_unavailable IS DISTINCT FROM $2

-- calendar_to_sync --
-- What syncing one calendar needs: its sealed URL, validators, the inn's timezone and
-- today, and the nights our feed last showed the channel closed.
SELECT c.id, c.import_url_sealed, c.etag, c.last_modified, c.exported_unavailable,
       p.timezone, (now() AT TIME ZONE p.timezone)::date AS today,
       EXISTS (SELECT 1 FROM blocks b
               WHERE b.calendar_id = c.id AND b.status = 'active'
                 AND b.conflict_nights <> '{}') AS has_conflicts
FROM calendars c JOIN properties p ON p.id = c.property_id
WHERE c.id = $1

-- apply_calendar_feed --
-- Apply a parsed feed in one transaction (sql/migrations/0011_channels.sql).
SELECT * FROM apply_calendar_feed($1, $2, $3, $4, $5, $6)

-- record_sync_success --
-- The feed was had (and applied); $2/$3 the validators for the next conditional GET,
-- $4/$5 the events it held and those ignored (NULL: not modified, keep the counts).
UPDATE calendars
SET last_attempt_at = now(), last_success_at = now(), last_error = NULL,
    consecutive_failures = 0, etag = $2, last_modified = $3,
    event_count = coalesce($4, event_count), ignored_events = coalesce($5, ignored_events)
WHERE id = $1

-- record_sync_failure --
-- The feed could not be had or read ($2 says why, never the URL); nothing else changes.
UPDATE calendars
SET last_attempt_at = now(), last_error = $2, consecutive_failures = consecutive_failures + 1
WHERE id = $1

-- calendars_to_sync --
-- The calendars with an import URL, of one property ($1) or all (NULL).
SELECT c.id FROM calendars c JOIN properties p ON p.id = c.property_id
WHERE c.import_url_sealed IS NOT NULL AND ($1::text IS NULL OR p.code = $1)
ORDER BY c.id

-- conflict_summary --
-- What the staff's conflict notice says: room, calendar, and our reservations on the nights.
SELECT rt.name AS room, c.name AS calendar,
       (SELECT string_agg(DISTINCT r.code, ', ' ORDER BY r.code)
        FROM hold_nights n JOIN reservations r ON r.hold_id = n.hold_id
        WHERE r.status = 'confirmed' AND n.room_type_id = b.room_type_id
          AND n.date = ANY ($2::date[])) AS codes
FROM blocks b
JOIN room_types rt ON rt.id = b.room_type_id
JOIN calendars c ON c.id = b.calendar_id
WHERE b.id = $1

-- calendar_import_url --
-- A calendar's sealed import URL, by property code and calendar name (dev commands).
SELECT c.id, c.import_url_sealed FROM calendars c JOIN properties p ON p.id = c.property_id
WHERE p.code = $1 AND c.name = $2
