"""The local stack: own Postgres, local Cloud Tasks, provider fakes, dev commands."""
