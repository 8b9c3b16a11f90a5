"""The code location: ``dagster dev -m sunorecsys_pipeline.definitions`` (or ``make ui``).

``SUNORECSYS_EXECUTOR=k8s`` runs every step in its own pod with dagster-k8s's
``k8s_job_executor`` (see deploy/README.md); ``in_process`` runs every step in the run's own
process (no per-step start-up: small deployments, the soak test); unset, Dagster's default
multiprocess executor runs.
"""

from __future__ import annotations

import os

import dagster as dg

from sunorecsys_pipeline.assets import ALL_ASSETS
from sunorecsys_pipeline.jobs import JOBS
from sunorecsys_pipeline.resources import default_resources
from sunorecsys_pipeline.schedules import intraday_scoring, nightly_rescoring
from sunorecsys_pipeline.sensors import catalogue_files_sensor


def _executor() -> dg.ExecutorDefinition | None:
    choice = os.environ.get("SUNORECSYS_EXECUTOR", "").strip().lower()
    if choice == "in_process":
        return dg.in_process_executor
    if choice != "k8s":
        return None
    from dagster_k8s import k8s_job_executor  # only on a cluster

    return k8s_job_executor


defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=JOBS,
    schedules=[nightly_rescoring, intraday_scoring],
    sensors=[catalogue_files_sensor],
    resources=default_resources(),
    executor=_executor(),
)
