-- create_hold --
-- Claim every night of a stay or none (see sql/migrations/0007_pipeline.sql).
SELECT * FROM create_hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)

-- release_hold --
-- Expire (when due) or cancel an active hold and give its nights back.
SELECT * FROM release_hold($1, $2, $3, $4)

-- expire_due_holds --
-- Sweep: expire up to $1 overdue active holds, skipping locked ones ($2: the sweep's id).
SELECT * FROM expire_due_holds($1, $2)

-- convert_hold --
-- Turn a paid hold into its reservation, or mark the payment for refund.
SELECT * FROM convert_hold($1, $2, $3, $4, $5, $6, $7)

-- quote_nights --
-- Every night of the stay for each room type of the property, in lock order.
SELECT rt.id AS room_type_id, rt.code, rt.name, rt.max_occupancy,
       a.date, a.rate_cents, a.stop_sell, a.inv_total,
       a.inv_total - a.inv_held - a.inv_booked - a.inv_blocked AS available
FROM room_types rt
JOIN ari_days a ON a.room_type_id = rt.id
WHERE rt.property_id = $1 AND a.date >= $2 AND a.date < $3
ORDER BY rt.id, a.date

-- property_by_code --
-- A property's identity and the settings quotes and holds need.
SELECT id, code, name, timezone, currency, whatsapp_phone_number_id, settings
FROM properties WHERE code = $1
