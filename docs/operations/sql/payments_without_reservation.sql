-- Money taken (or to give back) with no reservation, in two kinds:
--   payment  a payments row that succeeded with no reservation (a bug to investigate), or
--            needs_refund: the runbook's "paid after expiry / twice / wrong amount" queue
--            (refund or re-accommodate the guest);
--   receipt  a Stripe event saying a checkout of ours was paid, received over 5 minutes
--            ago, whose hold has no reservation and whose payment is not in the refund
--            queue: its task was lost or failed (see stale_receipts.sql; fix with
--            ops reprocess --source stripe).
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/payments_without_reservation.sql
--  or: python -m app ops payments-without-reservation   (exit 1 when it finds anything)
SELECT 'payment' AS kind, p.id AS payment_id, p.status, p.provider_object_id,
       p.payment_intent, p.amount_cents, p.currency, p.hold_id, h.status AS hold_status,
       NULL AS event_id, p.created_at
FROM payments p
JOIN holds h ON h.id = p.hold_id
LEFT JOIN reservations r ON r.payment_id = p.id
WHERE r.id IS NULL
  AND p.status IN ('succeeded', 'needs_refund')
UNION ALL
SELECT 'receipt', NULL, coalesce(pe.outcome, 'unprocessed'), pe.details->>'object_id',
       pe.details->>'payment_intent', (pe.details->>'amount_total')::bigint,
       pe.details->>'currency', h.id, h.status, pe.external_id, pe.received_at
FROM processed_events pe
JOIN holds h ON h.id = CASE WHEN pe.details->>'hold_id' ~ '^[0-9a-f-]{36}$'
                            THEN (pe.details->>'hold_id')::uuid END
WHERE pe.source = 'stripe'
  AND (pe.event_type = 'checkout.session.async_payment_succeeded'
       OR (pe.event_type = 'checkout.session.completed'
           AND pe.details->>'payment_status' = 'paid'))
  AND pe.received_at < now() - interval '5 minutes'
  AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.hold_id = h.id)
  AND NOT EXISTS (SELECT 1 FROM payments p
                  WHERE p.provider = 'stripe' AND p.provider_object_id = pe.details->>'object_id'
                    AND p.status IN ('needs_refund', 'refunded'))
ORDER BY created_at;
