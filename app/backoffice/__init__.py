"""The back office: what the inn's staff do, as commands with the guest path's guarantees.

Each command is one function (``cancel``, ``blocks``, ``walk_in``, ``rates``, ``lookup``)
taking a connection and a ``Scope`` (the one property it may touch, and who acts). A
changing command first computes its preview (``runner``); executing it recomputes the
preview under the locks of its one transaction and applies it only when it is exactly the
one the staff saw, else refuses with the fresh one. Stripe is never called inside it: a
refund is a pending row whose task calls Stripe. Every command, refusals included, leaves
one ``audit_log`` row, without PII. The CLI calls these functions now; the staff's WhatsApp
commands and the console will call the same ones.
"""
