-- The inn's API (app/api/). Reads for one property; its changes are recorded as commands
-- (console_commands) for the worker, as the console's are.

-- api_key_create --
INSERT INTO api_keys (property_id, name, scope, key_hmac) VALUES ($1, $2, $3, $4)
RETURNING id, created_at

-- api_key_list --
SELECT id, name, scope, created_at, last_used_at, revoked_at
FROM api_keys WHERE property_id = $1 ORDER BY id

-- api_key_revoke --
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
RETURNING id, revoked_at

-- api_key_use --
-- The live key of this HMAC, its last use recorded (at most once a minute: a write per
-- request would serialize a busy key's requests on its row), and this minute's count.
WITH k AS (
    SELECT k.id, k.property_id, k.scope, k.last_used_at FROM api_keys k
    WHERE k.key_hmac = $1 AND k.revoked_at IS NULL
), used AS (
    UPDATE api_keys a SET last_used_at = now() FROM k
    WHERE a.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
), counted AS (
    INSERT INTO api_usage (key_id, window_start)
    SELECT id, date_trunc('minute', now()) FROM k
    ON CONFLICT ON CONSTRAINT api_usage_pkey DO UPDATE SET count = api_usage.count + 1
    RETURNING count
)
SELECT k.id, k.property_id, k.scope, (SELECT count FROM counted) AS count,
       60 - extract(second FROM now())::integer AS retry_after
FROM k

-- api_idempotency_claim --
INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT ON CONSTRAINT idempotency_keys_scope_key_key DO NOTHING
RETURNING id

-- api_idempotency_seen --
SELECT fingerprint, response FROM idempotency_keys WHERE scope = $1 AND key = $2

-- api_idempotency_answer --
UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2

-- api_idempotency_release --
DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND response IS NULL

-- api_room_types --
SELECT code, name, max_occupancy, max_adults, base_occupancy
FROM room_types WHERE property_id = $1 ORDER BY code

-- api_ari --
SELECT rt.code AS room_type, a.date, a.inv_total AS total,
       a.inv_total - a.inv_held - a.inv_booked - a.inv_blocked AS available,
       a.inv_held AS held, a.inv_booked AS booked, a.inv_blocked AS blocked,
       a.rate_cents, a.extra_adult_cents, a.min_stay, a.max_stay, a.stop_sell,
       a.closed_to_arrival, a.closed_to_departure
FROM ari_days a JOIN room_types rt ON rt.id = a.room_type_id
WHERE a.property_id = $1 AND a.date >= $2 AND a.date < $3
  AND ($4::text IS NULL OR rt.code = $4)
ORDER BY rt.code, a.date

-- api_holds --
SELECT id, status, checkin, checkout, guests, total_cents, currency, expires_at, created_at
FROM holds WHERE property_id = $1 AND ($2::uuid IS NULL OR id = $2) AND status = ANY($3)
ORDER BY created_at DESC LIMIT 100

-- api_reservations --
-- A page of reservations, newest check-in first, after the cursor ($5 check-in, $6 code).
SELECT code, status, checkin, checkout, guests, total_cents, currency, created_at,
       cancelled_at
FROM reservations
WHERE property_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::date IS NULL OR checkin >= $3)
  AND ($4::date IS NULL OR checkin <= $4)
  AND ($5::date IS NULL OR (checkin, code) < ($5, $6::text))
ORDER BY checkin DESC, code DESC
LIMIT $7

-- api_reservation --
SELECT code, status, checkin, checkout, guests, total_cents, currency, created_at,
       cancelled_at, cancel_reason
FROM reservations WHERE property_id = $1 AND code = $2

-- api_calendars --
SELECT c.name, rt.code AS room_type, c.units, c.import_url_sealed IS NOT NULL AS imports,
       c.last_success_at, c.last_error
FROM calendars c JOIN room_types rt ON rt.id = c.room_type_id
WHERE c.property_id = $1 ORDER BY c.name
