"""What every asset shares: owners, the GPU placement, retries, partition file helpers."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pandas as pd

from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.parquet import partition_path

OWNERS = ["team:recsys"]

# The daily assets use BackfillPolicy.single_run() on purpose (a range of days in one step: a
# backfill pays Dagster's start-up once). Dagster 1.13 still calls the parameter beta and warns at
# every code-location load; the behaviour we rely on is tested (tests/test_pipeline_runs.py).
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset`",
                        category=dg.BetaWarning)

# Model scoring runs one step at a time per GPU: pool "gpu" (limit 1 in dagster.yaml) locally, and
# on Kubernetes (dagster-k8s k8s_job_executor) each step's pod asks for one nvidia.com/gpu.
GPU_POOL = "gpu"
GPU_K8S_CONFIG: dict = {
    "container_config": {
        "resources": {
            "limits": {"nvidia.com/gpu": "1", "memory": "40Gi"},
            "requests": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "32Gi"},
        },
    },
    "pod_spec_config": {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}
GPU_OP_TAGS: dict = {"dagster-k8s/config": GPU_K8S_CONFIG}

# A model step that dies (GPU preempted, CUDA OOM) is retried after 30 s, then 60 s; the score
# cache makes a retry redo only the songs that were not finished.
MODEL_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


def require_partition(paths: DataPaths, table: str, partition_key: str) -> Path:
    """The path of one partition of a warehouse table; a clear Failure when it was never materialized."""
    path = partition_path(paths.warehouse_dir, table, partition_key)
    if not path.exists():
        raise dg.Failure(
            description=f"{table} partition {partition_key} has not been materialized ({path} is missing); "
                        f"materialize {table} for {partition_key} first",
            allow_retries=False)
    return path


def read_partition(paths: DataPaths, table: str, partition_key: str) -> pd.DataFrame:
    """One partition of a warehouse table; a clear Failure when it was never materialized."""
    return pd.read_parquet(require_partition(paths, table, partition_key))


def read_partition_if_exists(paths: DataPaths, table: str, partition_key: str) -> pd.DataFrame | None:
    path = partition_path(paths.warehouse_dir, table, partition_key)
    return pd.read_parquet(path) if path.exists() else None
