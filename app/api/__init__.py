"""The inn's JSON API (``/api/v1/``, public role): keys per property, reads by SQL,
changes as commands the worker runs, idempotent POSTs, problem+json errors."""
