-- A conversation is in one of the engine's states (app/conversations/model.py, State).
-- NOT VALID then VALIDATE: the check of existing rows does not block writers.
-- depends: 0007_pipeline
ALTER TABLE conversations ADD CONSTRAINT conversations_state_check CHECK (
    state IN ('new', 'collecting', 'quoted', 'awaiting_payment', 'booked', 'requote', 'human'))
    NOT VALID;
ALTER TABLE conversations VALIDATE CONSTRAINT conversations_state_check;
