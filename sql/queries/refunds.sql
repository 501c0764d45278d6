-- refund_to_send --
-- A refund a cancel asked for, with the payment intent Stripe refunds it from.
SELECT r.id, r.status, r.amount_cents, r.idempotency_key, r.stripe_refund_id, r.created_at,
       r.payment_id, r.reservation_id, p.provider, p.payment_intent, p.currency,
       h.property_id, v.code AS reservation_code
FROM refunds r
JOIN payments p ON p.id = r.payment_id
JOIN holds h ON h.id = p.hold_id
LEFT JOIN reservations v ON v.id = r.reservation_id
WHERE r.id = $1

-- refund_lock_payment --
-- Lock a payment before touching its refunds (every refund writer locks payment, then
-- refunds; NO KEY UPDATE leaves a cancel's refund insert, which takes KEY SHARE, unblocked).
SELECT id FROM payments WHERE id = $1 FOR NO KEY UPDATE

-- refund_record --
-- What Stripe says of one of our refunds ($1): its id and status, over a pending row that
-- has no other Stripe id (the first answer wins; a later one for the same refund agrees).
UPDATE refunds SET stripe_refund_id = $2, status = $3, updated_at = now()
WHERE id = $1 AND status = 'pending' AND (stripe_refund_id IS NULL OR stripe_refund_id = $2)

-- refund_refused --
-- Stripe refused one of our refunds for good: the row fails (while still pending).
UPDATE refunds SET status = 'failed', updated_at = now()
WHERE id = $1 AND status = 'pending' AND stripe_refund_id IS NULL
RETURNING id

-- refund_payment_cents --
-- refunded_cents never goes down: at least what Stripe says ($2) and what the payment's
-- succeeded refunds add up to. A payment that booked nothing (needs_refund) is refunded
-- once that covers all of it: it leaves the runbook's queue.
UPDATE payments p
SET refunded_cents = greatest(p.refunded_cents, t.cents),
    status = CASE WHEN p.status = 'needs_refund'
                       AND greatest(p.refunded_cents, t.cents) >= p.amount_cents
                  THEN 'refunded' ELSE p.status END,
    updated_at = now()
FROM (SELECT greatest($2::bigint, coalesce(sum(r.amount_cents), 0)) AS cents
      FROM refunds r WHERE r.payment_id = $1 AND r.status = 'succeeded') AS t
WHERE p.id = $1
  AND (p.refunded_cents < t.cents
       OR (p.status = 'needs_refund' AND greatest(p.refunded_cents, t.cents) >= p.amount_cents))

-- stripe_payment_known --
-- Whether a payment intent is one of our Stripe payments.
SELECT EXISTS (SELECT 1 FROM payments WHERE provider = 'stripe' AND payment_intent = $1)

-- stripe_payment_of_intent --
-- Our payment of a payment intent, locked (one charge or dispute event of a payment at a
-- time), with its inn and its reservation.
SELECT p.id, p.refund_id, p.amount_cents, p.currency, p.dispute_status, h.property_id,
       v.id AS reservation_id, v.code AS reservation_code, v.status AS reservation_status
FROM payments p
JOIN holds h ON h.id = p.hold_id
LEFT JOIN reservations v ON v.payment_id = p.id
WHERE p.provider = 'stripe' AND p.payment_intent = $1
ORDER BY p.created_at
LIMIT 1
FOR NO KEY UPDATE OF p

-- refund_mark_ours --
-- A refund Stripe lists whose metadata names our row $1 of payment $2: Stripe's id ($3) and
-- status ($4) recorded on it while it is pending. True when the row is ours.
WITH ours AS (
    SELECT id FROM refunds WHERE id = $1 AND payment_id = $2
), marked AS (
    UPDATE refunds r SET stripe_refund_id = $3, status = $4, updated_at = now()
    FROM ours
    WHERE r.id = ours.id AND r.status = 'pending'
      AND (r.stripe_refund_id IS NULL OR r.stripe_refund_id = $3)
    RETURNING r.id
)
SELECT EXISTS (SELECT 1 FROM ours)

-- refund_record_outside --
-- A refund made outside our code (Stripe's dashboard), recorded once by its Stripe id;
-- returns the new row's id, nothing when it was already recorded.
INSERT INTO refunds (payment_id, reservation_id, amount_cents, reason, status,
                     stripe_refund_id, idempotency_key)
VALUES ($1, $2, $3, 'stripe_dashboard', $4, $5::text, 'stripe:' || $5::text)
ON CONFLICT DO NOTHING
RETURNING id

-- refund_outside_status --
-- A dashboard refund recorded pending has since been decided at Stripe.
UPDATE refunds SET status = $2, updated_at = now()
WHERE stripe_refund_id = $1 AND reason = 'stripe_dashboard' AND status = 'pending'
  AND $2 <> 'pending'

-- dispute_record --
-- Stripe's dispute status on the payment.
UPDATE payments SET dispute_status = $2, updated_at = now()
WHERE id = $1 AND dispute_status IS DISTINCT FROM $2

-- refund_outbox --
-- A fact of a refund or a dispute, for the staff.
INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
VALUES ($1, $2, $3, $4, $5)
RETURNING id

-- stripe_intent_of_payment --
-- The payment intent of one of our Stripe payments (dev stripe-refund, stripe-dispute).
SELECT payment_intent FROM payments WHERE id = $1 AND provider = 'stripe'
