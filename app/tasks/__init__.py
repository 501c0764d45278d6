"""Cloud Tasks plumbing: the enqueuer, worker authentication, the outbox relay."""
