-- payment_pending --
-- A delayed method: the session completed unpaid; the async event decides later.
INSERT INTO payments AS p (provider, provider_object_id, hold_id, status, amount_cents, currency)
VALUES ('stripe', $1, $2, 'pending', $3, lower($4))
ON CONFLICT ON CONSTRAINT payments_provider_provider_object_id_key DO UPDATE
SET status = 'pending', updated_at = now()
WHERE p.status = 'created'

-- payment_failed --
-- The delayed payment failed: record it (only over created/pending).
INSERT INTO payments AS p (provider, provider_object_id, hold_id, status, amount_cents, currency)
VALUES ('stripe', $1, $2, 'failed', $3, lower($4))
ON CONFLICT ON CONSTRAINT payments_provider_provider_object_id_key DO UPDATE
SET status = 'failed', updated_at = now()
WHERE p.status IN ('created', 'pending')

-- payment_to_refund --
-- A payment waiting for its refund, with what the refund needs.
SELECT id, payment_intent FROM payments WHERE id = $1 AND status = 'needs_refund'

-- payment_refunded --
-- The refund ($2, of $3 cents) exists at Stripe.
UPDATE payments SET status = 'refunded', refund_id = $2,
                    refunded_cents = greatest(refunded_cents, $3), updated_at = now()
WHERE id = $1 AND status = 'needs_refund'

-- checkout_hold --
-- Everything a Checkout Session is derived from, so a retry sends identical parameters.
SELECT h.id, h.property_id, h.status, h.total_cents, h.currency, h.expires_at, h.created_at,
       h.checkin, h.checkout, h.correlation_id, p.name AS property_name
FROM holds h JOIN properties p ON p.id = h.property_id
WHERE h.id = $1

-- record_checkout_session --
-- The payment row for a new Checkout Session.
INSERT INTO payments (provider, provider_object_id, hold_id, amount_cents, currency)
VALUES ('stripe', $1, $2, $3, lower($4))
ON CONFLICT ON CONSTRAINT payments_provider_provider_object_id_key DO NOTHING

-- payment_session_for_hold --
-- The Checkout Session of a hold (newest first).
SELECT provider_object_id FROM payments WHERE hold_id = $1 ORDER BY created_at DESC LIMIT 1

-- hold_exists --
-- Whether an event's hold is ours at all.
SELECT EXISTS (SELECT 1 FROM holds WHERE id = $1)

-- payment_decision --
-- How a payment was decided: converted, or the payment.* fact written when it was not.
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM reservations r WHERE r.payment_id = $1) THEN 'converted'
    ELSE (SELECT substr(o.event_type, length('payment.') + 1) FROM outbox_events o
          WHERE o.aggregate_type = 'payment' AND o.aggregate_id = $1::text
          ORDER BY o.id LIMIT 1)
END
