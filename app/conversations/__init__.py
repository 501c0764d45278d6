"""The guest conversation: understanding, state and replies (pt-BR, es, en)."""
