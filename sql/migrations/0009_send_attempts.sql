-- A reply's send attempt is recorded before the provider is called and cleared once its
-- outcome is known. One still set when the next attempt comes (the worker died, or the
-- answer was lost, after the provider may have taken the message) is uncertain: the next
-- attempt waits for the provider's status to prove it went out, and sends again only
-- without that proof.
-- depends: 0008_conversation_states
ALTER TABLE messages ADD COLUMN attempt_started_at timestamptz;
