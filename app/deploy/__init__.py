"""`python -m app deploy plan|apply`: both roles on Cloud Run from one command.

An operator's tool, run from a checkout of the repository (it reads ``deploy/`` and
submits the tree to Cloud Build), never by the production image: ``plan`` builds the
ordered gcloud commands from ``deploy/`` and the code's own declarations (the task
catalog, the settings), ``apply`` runs them. See docs/deploy.md.
"""
