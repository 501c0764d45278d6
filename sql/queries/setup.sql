-- upsert_property --
-- Create or update a property by code; rewrites the row only when something changed.
INSERT INTO properties AS p (code, name, timezone, currency, whatsapp_phone_number_id, settings)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT ON CONSTRAINT properties_code_key DO UPDATE
SET name = EXCLUDED.name, timezone = EXCLUDED.timezone, currency = EXCLUDED.currency,
    whatsapp_phone_number_id = EXCLUDED.whatsapp_phone_number_id,
    settings = EXCLUDED.settings, updated_at = now()
WHERE (p.name, p.timezone, p.currency, p.whatsapp_phone_number_id, p.settings)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.timezone, EXCLUDED.currency, EXCLUDED.whatsapp_phone_number_id,
       EXCLUDED.settings)
RETURNING id, (xmax = 0) AS inserted

-- upsert_room_type --
-- Create or update a room type by (property, code); rewrites only on change.
INSERT INTO room_types AS rt (property_id, code, name, max_occupancy)
VALUES ($1, $2, $3, $4)
ON CONFLICT ON CONSTRAINT room_types_property_id_code_key DO UPDATE
SET name = EXCLUDED.name, max_occupancy = EXCLUDED.max_occupancy
WHERE (rt.name, rt.max_occupancy) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.max_occupancy)
RETURNING id

-- room_type_id --
-- A room type's id by property and code.
SELECT id FROM room_types WHERE property_id = $1 AND code = $2

-- property_id --
-- A property's id by code.
SELECT id FROM properties WHERE code = $1

-- lock_ari_range --
-- Lock existing nights of the given room types and dates in (room type, date) order and
-- show what is committed on each, so a new total can be checked against it.
SELECT a.room_type_id, a.date, a.inv_held + a.inv_booked + a.inv_blocked AS committed,
       w.inv_total AS wanted
FROM ari_days a
JOIN unnest($1::bigint[], $2::date[], $3::integer[]) AS w(room_type_id, date, inv_total)
  ON a.room_type_id = w.room_type_id AND a.date = w.date
ORDER BY a.room_type_id, a.date
FOR NO KEY UPDATE OF a

-- upsert_ari --
-- Write the desired nights; existing rows change only where a value differs.
INSERT INTO ari_days AS a (property_id, room_type_id, date, inv_total, rate_cents, stop_sell)
SELECT $1, w.room_type_id, w.date, w.inv_total, w.rate_cents, w.stop_sell
FROM unnest($2::bigint[], $3::date[], $4::integer[], $5::bigint[], $6::boolean[])
     AS w(room_type_id, date, inv_total, rate_cents, stop_sell)
ORDER BY w.room_type_id, w.date
ON CONFLICT ON CONSTRAINT ari_days_room_type_id_date_key DO UPDATE
SET inv_total = EXCLUDED.inv_total, rate_cents = EXCLUDED.rate_cents, stop_sell = EXCLUDED.stop_sell
WHERE (a.inv_total, a.rate_cents, a.stop_sell)
      IS DISTINCT FROM (EXCLUDED.inv_total, EXCLUDED.rate_cents, EXCLUDED.stop_sell)
RETURNING (xmax = 0) AS inserted

-- lock_ari_days --
-- Lock one room type's nights in a date range (inclusive), in date order.
SELECT date, inv_total, inv_held + inv_booked + inv_blocked AS committed
FROM ari_days
WHERE room_type_id = $1 AND date BETWEEN $2 AND $3
ORDER BY date
FOR NO KEY UPDATE

-- update_ari_days --
-- Change total, rate and/or stop-sell on a locked range; NULL keeps the current value.
UPDATE ari_days
SET inv_total = coalesce($4, inv_total),
    rate_cents = coalesce($5, rate_cents),
    stop_sell = coalesce($6, stop_sell)
WHERE room_type_id = $1 AND date BETWEEN $2 AND $3
  AND (inv_total, rate_cents, stop_sell)
      IS DISTINCT FROM (coalesce($4, inv_total), coalesce($5, rate_cents), coalesce($6, stop_sell))

-- replace_staff_numbers --
-- The property's staff numbers become exactly $2 (contact hashes).
WITH gone AS (
    DELETE FROM staff_numbers WHERE property_id = $1 AND contact_hash <> ALL ($2::text[])
)
INSERT INTO staff_numbers (property_id, contact_hash)
SELECT $1, unnest($2::text[])
ON CONFLICT ON CONSTRAINT staff_numbers_pkey DO NOTHING

-- property_whatsapp_settings --
SELECT settings -> 'whatsapp' FROM properties WHERE code = $1
