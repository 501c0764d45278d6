-- Payments that took the guest's money (or must give it back) with no reservation:
-- succeeded without a reservation is a bug to investigate; needs_refund is the runbook's
-- "payment after expiry / duplicate / wrong amount" queue (refund or re-accommodate).
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/payments_without_reservation.sql
--  or: python -m app ops payments-without-reservation   (exit 1 when it finds anything)
SELECT p.id AS payment_id, p.status, p.provider_object_id, p.payment_intent,
       p.amount_cents, p.currency, p.hold_id, h.status AS hold_status,
       p.created_at, p.updated_at
FROM payments p
JOIN holds h ON h.id = p.hold_id
LEFT JOIN reservations r ON r.payment_id = p.id
WHERE r.id IS NULL
  AND p.status IN ('succeeded', 'needs_refund')
ORDER BY p.created_at;
