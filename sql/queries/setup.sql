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
INSERT INTO room_types AS rt (property_id, code, name, max_occupancy, base_occupancy, max_adults)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT ON CONSTRAINT room_types_property_id_code_key DO UPDATE
SET name = EXCLUDED.name, max_occupancy = EXCLUDED.max_occupancy,
    base_occupancy = EXCLUDED.base_occupancy, max_adults = EXCLUDED.max_adults
WHERE (rt.name, rt.max_occupancy, rt.base_occupancy, rt.max_adults)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.max_occupancy, EXCLUDED.base_occupancy, EXCLUDED.max_adults)
RETURNING id
-- room_type_id --
-- A room type's id by property and code.
SELECT id FROM room_types WHERE property_id = $1 AND code = $2

-- property_id --
-- A property's id by code.
SELECT id FROM properties WHERE code = $1

-- lock_ari_range --
-- Lock existing nights of the given room types and dates in (room type, date) order and
-- show what is committed on each, so a new total can be checked against it. A total set
-- by hand stays unless $4 (reset what was set by hand).
SELECT a.room_type_id, a.date, a.inv_held + a.inv_booked + a.inv_blocked AS committed,
       CASE WHEN NOT $4 AND 'inv_total' = ANY (a.manual) THEN a.inv_total
            ELSE w.inv_total END AS wanted
FROM ari_days a
JOIN unnest($1::bigint[], $2::date[], $3::integer[]) AS w(room_type_id, date, inv_total)
  ON a.room_type_id = w.room_type_id AND a.date = w.date
ORDER BY a.room_type_id, a.date
FOR NO KEY UPDATE OF a
-- property_nights --
-- What an import compares the file with: a property's nights in a date range (inclusive).
SELECT room_type_id, date, inv_total, rate_cents, extra_adult_cents, min_stay, max_stay,
       closed_to_arrival, closed_to_departure, stop_sell, manual
FROM ari_days
WHERE property_id = $1 AND date BETWEEN $2 AND $3

-- upsert_ari --
-- Write the nights an import changes. A value the inn set by hand (named in manual) is
-- kept, unless $12 resets them all to the file's.
INSERT INTO ari_days AS a (property_id, room_type_id, date, inv_total, rate_cents,
                           extra_adult_cents, min_stay, max_stay, closed_to_arrival,
                           closed_to_departure, stop_sell)
SELECT $1, w.*
FROM unnest($2::bigint[], $3::date[], $4::integer[], $5::bigint[], $6::bigint[],
            $7::integer[], $8::integer[], $9::boolean[], $10::boolean[], $11::boolean[])
     AS w(room_type_id, date, inv_total, rate_cents, extra_adult_cents, min_stay, max_stay,
          closed_to_arrival, closed_to_departure, stop_sell)
ORDER BY w.room_type_id, w.date
ON CONFLICT ON CONSTRAINT ari_days_room_type_id_date_key DO UPDATE
SET inv_total = CASE WHEN NOT $12 AND 'inv_total' = ANY (a.manual)
                     THEN a.inv_total ELSE EXCLUDED.inv_total END,
    rate_cents = CASE WHEN NOT $12 AND 'rate_cents' = ANY (a.manual)
                      THEN a.rate_cents ELSE EXCLUDED.rate_cents END,
    extra_adult_cents = CASE WHEN NOT $12 AND 'extra_adult_cents' = ANY (a.manual)
                             THEN a.extra_adult_cents ELSE EXCLUDED.extra_adult_cents END,
    min_stay = CASE WHEN NOT $12 AND 'min_stay' = ANY (a.manual)
                    THEN a.min_stay ELSE EXCLUDED.min_stay END,
    max_stay = CASE WHEN NOT $12 AND 'max_stay' = ANY (a.manual)
                    THEN a.max_stay ELSE EXCLUDED.max_stay END,
    closed_to_arrival = CASE WHEN NOT $12 AND 'closed_to_arrival' = ANY (a.manual)
                             THEN a.closed_to_arrival ELSE EXCLUDED.closed_to_arrival END,
    closed_to_departure = CASE WHEN NOT $12 AND 'closed_to_departure' = ANY (a.manual)
                               THEN a.closed_to_departure ELSE EXCLUDED.closed_to_departure END,
    stop_sell = CASE WHEN NOT $12 AND 'stop_sell' = ANY (a.manual)
                     THEN a.stop_sell ELSE EXCLUDED.stop_sell END,
    manual = CASE WHEN $12 THEN '{}' ELSE a.manual END
RETURNING (xmax = 0) AS inserted
-- lock_ari_days --
-- Lock one room type's nights on the given dates, in date order.
SELECT date, inv_total, inv_held + inv_booked + inv_blocked AS committed
FROM ari_days
WHERE room_type_id = $1 AND date = ANY ($2::date[])
ORDER BY date
FOR NO KEY UPDATE
-- update_ari_days --
-- Set the values named in $3 on one room type's (locked) nights, and mark them as set by
-- hand. A min or max stay of 0 clears the rule. Rows already so are not rewritten.
UPDATE ari_days a
SET inv_total = n.inv_total, rate_cents = n.rate_cents, extra_adult_cents = n.extra_adult_cents,
    min_stay = n.min_stay, max_stay = n.max_stay, closed_to_arrival = n.closed_to_arrival,
    closed_to_departure = n.closed_to_departure, stop_sell = n.stop_sell, manual = n.manual
FROM (
    SELECT o.id,
           CASE WHEN 'inv_total' = ANY ($3) THEN $4::integer ELSE o.inv_total END AS inv_total,
           CASE WHEN 'rate_cents' = ANY ($3) THEN $5::bigint ELSE o.rate_cents END AS rate_cents,
           CASE WHEN 'extra_adult_cents' = ANY ($3) THEN $6::bigint
                ELSE o.extra_adult_cents END AS extra_adult_cents,
           CASE WHEN 'min_stay' = ANY ($3) THEN nullif($7::integer, 0)
                ELSE o.min_stay END AS min_stay,
           CASE WHEN 'max_stay' = ANY ($3) THEN nullif($8::integer, 0)
                ELSE o.max_stay END AS max_stay,
           CASE WHEN 'closed_to_arrival' = ANY ($3) THEN $9::boolean
                ELSE o.closed_to_arrival END AS closed_to_arrival,
           CASE WHEN 'closed_to_departure' = ANY ($3) THEN $10::boolean
                ELSE o.closed_to_departure END AS closed_to_departure,
           CASE WHEN 'stop_sell' = ANY ($3) THEN $11::boolean ELSE o.stop_sell END AS stop_sell,
           ARRAY(SELECT DISTINCT m FROM unnest(o.manual || $3::text[]) AS m ORDER BY m) AS manual
    FROM ari_days o
    WHERE o.room_type_id = $1 AND o.date = ANY ($2::date[])
) AS n
WHERE a.id = n.id
  AND (a.inv_total, a.rate_cents, a.extra_adult_cents, a.min_stay, a.max_stay,
       a.closed_to_arrival, a.closed_to_departure, a.stop_sell, a.manual)
      IS DISTINCT FROM
      (n.inv_total, n.rate_cents, n.extra_adult_cents, n.min_stay, n.max_stay,
       n.closed_to_arrival, n.closed_to_departure, n.stop_sell, n.manual)

-- replace_child_rates --
-- The property's children's age bands become exactly ($2 max ages, $3 percents).
WITH gone AS (
    DELETE FROM child_rates WHERE property_id = $1 AND max_age <> ALL ($2::integer[])
)
INSERT INTO child_rates AS c (property_id, max_age, percent)
SELECT $1, b.max_age, b.percent FROM unnest($2::integer[], $3::integer[]) AS b(max_age, percent)
ON CONFLICT ON CONSTRAINT child_rates_pkey DO UPDATE
SET percent = EXCLUDED.percent
WHERE c.percent <> EXCLUDED.percent
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

-- replace_cancellation_tiers --
-- The property's cancellation policy becomes exactly ($2 days before, $3 refund percents).
WITH gone AS (
    DELETE FROM cancellation_tiers WHERE property_id = $1 AND days_before <> ALL ($2::integer[])
)
INSERT INTO cancellation_tiers AS c (property_id, days_before, refund_percent)
SELECT $1, t.days_before, t.refund_percent
FROM unnest($2::integer[], $3::integer[]) AS t(days_before, refund_percent)
ON CONFLICT ON CONSTRAINT cancellation_tiers_pkey DO UPDATE
SET refund_percent = EXCLUDED.refund_percent
