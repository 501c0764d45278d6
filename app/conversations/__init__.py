"""The guest conversation (pt-BR, es, en).

``understanding`` reads a message; ``engine`` decides (a state machine over ``model``'s
plain data) and calls ``actions`` for what it does to the world (quotes, holds, Checkout
Sessions); ``store`` keeps conversations (the lease, the turn's rows); ``handlers`` are the
worker's tasks; ``replies`` the texts; ``staff_notices`` and ``staff_commands`` the inn's side.
"""
