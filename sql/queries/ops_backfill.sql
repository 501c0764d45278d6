-- stripe_receipts_among --
-- Which of these Stripe event ids ($1) we already have a receipt of.
SELECT external_id FROM processed_events WHERE source = 'stripe' AND external_id = any($1::text[])
