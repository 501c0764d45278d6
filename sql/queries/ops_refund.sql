-- payment_to_refund_by_hand --
-- A payment an operator refunds by hand (ops refund), with its inn and its latest refund
-- of that kind not failed (one is enough). Read after refund_lock_payment, in a statement
-- of its own, so that it sees the refund a concurrent run committed while it waited.
SELECT p.id, p.status, p.provider, p.amount_cents, p.refunded_cents, p.currency, p.hold_id,
       h.property_id, pr.code AS property_code,
       r.id AS refund_id, r.status AS refund_status
FROM payments p
JOIN holds h ON h.id = p.hold_id
JOIN properties pr ON pr.id = h.property_id
LEFT JOIN LATERAL (
    SELECT id, status FROM refunds
    WHERE payment_id = p.id AND reason = 'needs_refund' AND status <> 'failed'
    ORDER BY created_at DESC
    LIMIT 1
) AS r ON true
WHERE p.id = $1
