-- WhatsApp's 24-hour customer-service window: outside it a reply can only go out as an
-- approved template. A reply that has one records which (kind and parameters, never
-- personal data); one that has none is marked undeliverable: never sent, never retried.
-- depends: 0005_staff
ALTER TABLE messages ADD COLUMN template jsonb;
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (
    status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed', 'undeliverable'));
