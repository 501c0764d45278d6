"""The CLI's `deploy plan` and `deploy apply` (registered in app/cli.py with ``run_raw``:
neither needs DATABASE_URL or any other setting).

``plan`` prints the commands and a JSON summary as its last line, and runs nothing: no
credentials, no network (git names the image's tag unless --tag does). ``apply`` runs
them. A plan that cannot be built (a deploy file the deploy cannot apply, no tag) is one
line on stderr and exit 2, as a configuration error is.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.deploy import names
from app.deploy.apply import apply
from app.deploy.plan import ALERT_EMAIL, Options, PlanError, build_plan, commit_tag, render

EXIT_CONFIG = 2


def run_deploy(args: argparse.Namespace) -> int:
    try:
        tag, dirty = (args.tag, False) if args.tag else commit_tag()
        if dirty and args.sub == "apply":
            # The tag names the commit; an image built from other files under it would lie.
            raise PlanError("the working tree has uncommitted changes: commit them or give --tag")
        plan = build_plan(
            Options(
                project=args.project,
                region=args.region,
                tag=tag,
                worker_url=args.worker_url,
                cloudsql_instance=args.cloudsql_instance or names.DEFAULT_INSTANCE,
                alert_email=args.alert_email,
            )
        )
        if args.sub == "apply" and ALERT_EMAIL in plan.placeholders:
            raise PlanError(
                "--alert-email is required: an alert policy that notifies no one pages no one"
            )
    except PlanError as exc:
        print(f"hotelly: deploy: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.sub == "apply":
        return apply(plan, sys.stdout, sys.stderr)
    for line in render(plan):
        print(line)
    if dirty:
        print("# The working tree has uncommitted changes: apply refuses them (commit, or --tag).")
    print(json.dumps({"steps": len(plan.steps), "placeholders": list(plan.placeholders)}))
    return 0
