-- create_hold --
-- Claim every night of every unit of a stay or none (see sql/migrations/0012_rates.sql).
SELECT * FROM create_hold($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9)

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
-- Each room type of the property over the stay ($2 to $3), for one party ($4 adults, $5
-- each child's age, NULL when unknown): the nights the calendar has, whether none is
-- stop-sold, the units free on all of them, the rooms it has on all of them, the first
-- stay rule it breaks (with the arrival's min and max stay), whether the party fits, and
-- its price night by night (priced by the functions create_hold uses).
WITH bands AS (
    SELECT coalesce(array_agg(c.max_age ORDER BY c.max_age), '{}') AS ages,
           coalesce(array_agg(c.percent ORDER BY c.max_age), '{}') AS pcts
    FROM child_rates c WHERE c.property_id = $1
), pa AS (
    SELECT $4::integer AS adults, s.guests, s.as_adults, s.child_percents
    FROM bands b CROSS JOIN LATERAL party_seats($4, $5::integer[], b.ages, b.pcts) AS s
)
SELECT rt.id AS room_type_id, rt.code, rt.name, rt.max_occupancy, rt.max_adults,
       n.nights, n.open, n.available, n.rooms, n.min_stay, n.max_stay,
       stay_rule($3::date - $2::date, n.closed_to_arrival, n.min_stay, n.max_stay, n.departs,
                 n.closed_to_departure) AS rule,
       x.fits, n.dates, n.prices
FROM room_types rt
CROSS JOIN pa
CROSS JOIN LATERAL unit_party(rt.base_occupancy, rt.max_adults, rt.max_occupancy, pa.adults,
                              pa.guests, pa.as_adults, pa.child_percents) AS x
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE a.date < $3) AS nights,
           bool_and(NOT a.stop_sell) FILTER (WHERE a.date < $3) AS open,
           min(a.inv_total - a.inv_held - a.inv_booked - a.inv_blocked)
               FILTER (WHERE a.date < $3) AS available,
           min(a.inv_total) FILTER (WHERE a.date < $3) AS rooms,
           bool_or(a.closed_to_arrival) FILTER (WHERE a.date = $2) AS closed_to_arrival,
           min(a.min_stay) FILTER (WHERE a.date = $2) AS min_stay,
           min(a.max_stay) FILTER (WHERE a.date = $2) AS max_stay,
           bool_or(a.date = $3) AS departs,
           bool_or(a.closed_to_departure) FILTER (WHERE a.date = $3) AS closed_to_departure,
           array_agg(a.date ORDER BY a.date) FILTER (WHERE a.date < $3) AS dates,
           array_agg(p.cents ORDER BY a.date) FILTER (WHERE a.date < $3) AS prices
    FROM ari_days a
    CROSS JOIN LATERAL night_cents(a.rate_cents, a.extra_adult_cents, x.extra_adults,
                                   x.child_percents) AS p
    WHERE a.room_type_id = rt.id AND a.date >= $2 AND a.date <= $3
) AS n
WHERE rt.property_id = $1
ORDER BY rt.id

-- property_by_code --
-- A property's identity and the settings quotes and holds need.
SELECT id, code, name, timezone, currency, whatsapp_phone_number_id, settings
FROM properties WHERE code = $1
