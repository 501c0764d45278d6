-- Channel events that could not take some of their nights (sold here, or on another
-- channel, inside the sync window): nothing was overbooked and nothing was dropped — the
-- nights they could take are blocked, these are not. The staff were told once. Resolve with
-- the channel or the guest; when the other side frees the nights (our hold expires, the
-- other event is removed), the next sync takes them and the conflict resolves.
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/open_conflicts.sql
--  or: python -m app ops conflicts   (exit 1 when it finds anything)
SELECT p.code AS property, rt.code AS room_type, c.name AS calendar, b.external_uid AS uid,
       b.conflict_nights AS nights,
       coalesce((SELECT array_agg(DISTINCT r.code ORDER BY r.code)
                 FROM hold_nights n JOIN reservations r ON r.hold_id = n.hold_id
                 WHERE r.status = 'confirmed' AND n.room_type_id = b.room_type_id
                   AND n.date = ANY (b.conflict_nights)), '{}') AS reservation_codes,
       b.conflict_since
FROM blocks b
JOIN properties p ON p.id = b.property_id
JOIN room_types rt ON rt.id = b.room_type_id
LEFT JOIN calendars c ON c.id = b.calendar_id
WHERE b.status = 'active' AND b.conflict_nights <> '{}'
ORDER BY b.conflict_since, b.id;
