"""Each service's database pool as deploy/cloudrun/*.yaml declares it, for ``ops db``
(runbook §7.7): DB_POOL_MAX connections per instance times its maximum instances is the
most that service can hold open. Read with the deploy's own reader, so it is what a deploy
would apply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.deploy.cloudrun import read_service
from app.deploy.plan import SERVICES
from app.settings import Settings

CLOUDRUN_DIR = Path(__file__).resolve().parent.parent.parent / "deploy" / "cloudrun"
# What Cloud Run allows a service that sets no autoscaling.knative.dev/maxScale.
CLOUD_RUN_DEFAULT_MAX_INSTANCES = 100


@dataclass(frozen=True)
class RolePool:
    service: str
    role: str
    pool_max: int  # DB_POOL_MAX of one instance
    max_instances: int

    @property
    def connections(self) -> int:
        return self.pool_max * self.max_instances


def declared_pools(directory: Path = CLOUDRUN_DIR) -> list[RolePool]:
    """Each service's pool, in deploy order; OSError when a file is not there."""
    pools = []
    for role in SERVICES:
        workload = read_service(directory / f"{role}.yaml", {})
        flags = dict(flag.split("=", 1) for flag in workload.flags if "=" in flag)
        pools.append(
            RolePool(
                service=workload.name,
                role=role,
                # A service that sets no DB_POOL_MAX runs with the settings' default.
                pool_max=int(workload.env.get("DB_POOL_MAX", Settings.db_pool_max)),
                max_instances=int(flags.get("--max-instances", CLOUD_RUN_DEFAULT_MAX_INSTANCES)),
            )
        )
    return pools
