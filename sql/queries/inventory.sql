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

-- stay_alternatives --
-- The nearest stays one unit hosts the party in when the one asked for ($2 arrival, $3
-- nights) cannot be sold, in one read over the surrounding nights: arrivals up to $6 days
-- either side (from $7, today), each at the length nearest $3 (up to $8 nights) that every
-- night is for sale, free and open to the party and no stay rule refuses. Running sums of
-- each room type's nights give any stay's price and its unsellable nights by subtracting
-- the arrival's from the departure's. One row per arrival: the cheapest room type; the
-- nearest $9 of them, in date order.
WITH bands AS (
    SELECT coalesce(array_agg(c.max_age ORDER BY c.max_age), '{}') AS ages,
           coalesce(array_agg(c.percent ORDER BY c.max_age), '{}') AS pcts
    FROM child_rates c WHERE c.property_id = $1
), pa AS (
    SELECT s.guests, s.as_adults, s.child_percents
    FROM bands b CROSS JOIN LATERAL party_seats($4, $5::integer[], b.ages, b.pcts) AS s
), fit AS (
    SELECT rt.id, rt.name, x.extra_adults, x.child_percents
    FROM room_types rt
    CROSS JOIN pa
    CROSS JOIN LATERAL unit_party(rt.base_occupancy, rt.max_adults, rt.max_occupancy, $4,
                                  pa.guests, pa.as_adults, pa.child_percents) AS x
    WHERE rt.property_id = $1 AND x.fits
), night AS (
    SELECT f.id AS room_type_id, f.name, a.date, a.closed_to_arrival, a.min_stay, a.max_stay,
           a.closed_to_departure,
           -- Over the nights before this date: their count, price and unsellable ones.
           count(*) OVER before AS nights_before,
           coalesce(sum(p.cents) OVER before, 0)::bigint AS cents_before,
           coalesce(sum((a.stop_sell OR a.inv_total - a.inv_held - a.inv_booked
                         - a.inv_blocked < 1)::integer) OVER before, 0) AS unsellable_before
    FROM fit f
    JOIN ari_days a ON a.room_type_id = f.id
                   AND a.date BETWEEN greatest($2::date - $6::integer, $7::date)
                                  AND $2::date + $6::integer + $8::integer
    CROSS JOIN LATERAL night_cents(a.rate_cents, a.extra_adult_cents, f.extra_adults,
                                   f.child_percents) AS p
    WINDOW before AS (PARTITION BY f.id ORDER BY a.date
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), stays AS (
    SELECT arr.date AS checkin, dep.date AS checkout, arr.room_type_id, arr.name,
           dep.cents_before - arr.cents_before AS total_cents,
           -- a day moved or added counts one, a night taken away two
           abs(arr.date - $2::date) + greatest((dep.date - arr.date) - $3::integer,
                                               2 * ($3::integer - (dep.date - arr.date)))
               AS distance
    FROM night arr
    JOIN night dep ON dep.room_type_id = arr.room_type_id
                  AND dep.date > arr.date AND dep.date <= arr.date + $8::integer
    WHERE arr.date >= $7::date
      AND (arr.date, dep.date) <> ($2::date, $2::date + $3::integer)
      -- shorter than asked only from the same arrival (a maximum stay there)
      AND (dep.date - arr.date >= $3::integer OR arr.date = $2::date)
      -- every night there (no gap in the calendar) and every one of them for sale
      AND dep.nights_before - arr.nights_before = dep.date - arr.date
      AND dep.unsellable_before = arr.unsellable_before
      AND stay_rule(dep.date - arr.date, arr.closed_to_arrival, arr.min_stay, arr.max_stay,
                    true, dep.closed_to_departure) IS NULL
), nearest AS (
    SELECT DISTINCT ON (checkin) *
    FROM stays
    ORDER BY checkin, distance, total_cents, room_type_id
), chosen AS (  -- the same arrival first, then later ones, among the equally near
    SELECT * FROM nearest
    ORDER BY distance, checkin = $2::date DESC, checkin < $2::date, checkin, total_cents
    LIMIT $9
)
SELECT checkin, checkout, room_type_id, name, total_cents FROM chosen ORDER BY checkin

-- prices_children --
-- Whether the property prices children by age (it has age bands).
SELECT EXISTS (SELECT 1 FROM child_rates WHERE property_id = $1)
