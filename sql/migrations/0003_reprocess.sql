-- How many times an operator re-enqueued a receipt: the suffix of its new task name
-- (Cloud Tasks blocks a task name for about an hour after its task ran).
-- depends: 0002_inventory
ALTER TABLE processed_events
    ADD COLUMN reprocess_generation integer NOT NULL DEFAULT 0;
