"""A pousada's calendar: property setup, quotes and the critical hold transactions."""
