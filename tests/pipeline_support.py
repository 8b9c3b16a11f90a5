"""Helpers shared by the pipeline tests (tests/test_pipeline_*.py): a writable copy of the sample
catalogue, the resources pointing at it, and small run helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from sunorecsys.paths import DataPaths


def copy_sample(sample: DataPaths, dest: Path) -> DataPaths:
    """A writable data root with the sample's catalogue files; audio is linked (read-only use)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(sample.raw_dir, dest / "raw")
    os.symlink(sample.audio_dir.resolve(), dest / "audio", target_is_directory=True)
    return DataPaths(dest)


def pipeline_resources(paths: DataPaths, **overrides) -> dict:
    """The code location's resources, pointed at ``paths``, never fetching audio from the network."""
    from sunorecsys_pipeline.resources import (
        AudioboxResource,
        AudioChecksResource,
        DataRootResource,
        MusicFlamingoResource,
        QualityGatesResource,
    )

    resources = {
        "data_root": DataRootResource(data_dir=str(paths.root)),
        "audio_checks_settings": AudioChecksResource(workers=1, fetch_audio=False),
        "quality_gates": QualityGatesResource(),
        "flamingo": MusicFlamingoResource(model_path=str(paths.root / "no-flamingo-weights")),
        "audiobox": AudioboxResource(checkpoint_path=None),
    }
    resources.update(overrides)
    return resources


def partitions_with_songs(paths: DataPaths) -> list[str]:
    created = pd.read_parquet(paths.processed_songs, columns=["created_at"])["created_at"]
    return sorted(set(created.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")))


def materialize(selection: list[str], resources: dict, instance: dg.DagsterInstance,
                partition_key: str | None = None, raise_on_error: bool = True, run_config=None,
                partition_range: tuple[str, str] | None = None):
    """One run of ``selection``: one partition, a range of partitions ``(first, last)`` (as one
    run: the assets' single-run backfill policy), or unpartitioned."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    from sunorecsys_pipeline.assets import ALL_ASSETS

    # Dagster 1.13 loads definitions against a context-variable "current" defs-state storage that
    # holds only a weak reference to its instance. Across many instances in one test session it can
    # be left pointing at a garbage-collected one ("Attempted to resolve undefined DagsterInstance
    # weakref", seen once, depending on GC timing); pin it to the instance this run uses.
    with set_defs_state_storage(instance.defs_state_storage):
        tags = ({"dagster/asset_partition_range_start": partition_range[0],
                 "dagster/asset_partition_range_end": partition_range[1]} if partition_range else None)
        return dg.materialize(ALL_ASSETS, selection=selection, resources=resources, instance=instance,
                              partition_key=partition_key, raise_on_error=raise_on_error,
                              run_config=run_config, tags=tags)


def materialization_metadata(result, asset: str, partition: str | None = None) -> dict:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == dg.AssetKey(asset) and mat.partition == partition:
            return {k: v.value for k, v in mat.metadata.items()}
    raise AssertionError(f"no materialization of {asset} {partition or ''}")


def check_evaluations(result) -> dict[tuple[str, str], bool]:
    """``{(asset, check name): passed}`` of a run's check evaluations."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            out[(ev.asset_key.path[-1], ev.check_name)] = ev.passed
    return out


def materialize_in_child(instance_ref, data_root: str, selection: list[str], partition_key: str) -> tuple[bool, str]:
    """Run in a separate process (spawned): one materialization against a shared instance.

    Two of these at once is what two concurrent runs are: two processes writing to the same
    warehouse and the same instance storage.
    """
    from pathlib import Path

    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        result = materialize(selection, pipeline_resources(DataPaths(Path(data_root))), instance,
                             partition_key=partition_key, raise_on_error=False)
        return bool(result.success), result.run_id
