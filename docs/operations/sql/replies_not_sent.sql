-- Replies to guests (outbound WhatsApp messages) that have not gone out, in two kinds:
--   queued  waiting for more than 5 minutes: a send is retried with backoff while the
--           provider answers 429/5xx, so a reply this late is stuck (the messages queue,
--           the provider, the inn's credentials);
--   failed  in the last 24 hours (one daily look sees each): the provider refused it for
--           good, or reported it failed after taking it. The guest never got it: the staff
--           should reach them.
-- last_error says why (never the text). Undeliverable replies (outside WhatsApp's 24-hour
-- window with no template for them) are not listed: that is WhatsApp's rule, not a fault.
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/replies_not_sent.sql
--  or: python -m app ops status   (its replies-queued and replies-failed lines)
SELECT m.status AS kind, p.code AS property, m.id AS message_id, m.conversation_id,
       m.attempts, m.last_error, m.correlation_id, m.created_at, m.updated_at
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
JOIN properties p ON p.id = c.property_id
WHERE m.direction = 'out'
  AND ((m.status = 'queued' AND m.created_at < now() - interval '5 minutes')
       OR (m.status = 'failed' AND m.updated_at > now() - interval '24 hours'))
ORDER BY m.created_at;
