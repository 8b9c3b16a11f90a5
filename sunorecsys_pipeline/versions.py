"""The scorer version stored with each partition, and which partitions are stale.

Every scoring asset records the version of the scorer that produced a partition: in full as
metadata (``scorer_version``), and as a materialization tag (:data:`SCORER_VERSION_TAG`) holding a
short digest of it, because Dagster tag values allow only ``[A-Za-z0-9_.-]`` and 63 characters
while a version reads like ``audiobox-aesthetics@<sha>+audiobox-scorer/1``. Dagster's own staleness
(``RunRequest(stale_assets_only=True)``) ignores partitioned assets, so the nightly schedule
compares each partition's recorded version with the current one here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import dagster as dg

SCORER_VERSION_TAG = "sunorecsys/scorer_version"
PAGE_SIZE = 1000


def version_digest(version: str) -> str:
    """A tag-safe digest of a scorer version (16 hex characters)."""
    return hashlib.sha256(version.encode("utf-8")).hexdigest()[:16]


def version_tags(version: str) -> dict[str, str]:
    """Tags to put on a partition's materialization."""
    return {SCORER_VERSION_TAG: version_digest(version)}


def recorded_versions(instance: dg.DagsterInstance, asset_key: dg.AssetKey | str) -> dict[str, str | None]:
    """``{partition_key: scorer version digest}`` from each partition's latest materialization.

    Partitions never materialized are absent; a materialization without the tag maps to None.
    """
    key = dg.AssetKey.from_coercible(asset_key)
    found: dict[str, str | None] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=PAGE_SIZE,
                                               cursor=cursor, ascending=False)
        for record in page.records:
            materialization = record.asset_materialization
            if materialization is None or materialization.partition is None:
                continue
            # newest first: the first record seen for a partition is its latest
            found.setdefault(materialization.partition, (materialization.tags or {}).get(SCORER_VERSION_TAG))
        if not page.has_more:
            return found
        cursor = page.cursor


def stale_partitions(recorded: Mapping[str, str | None], current_version: str,
                     partition_keys: Iterable[str] | None = None) -> list[str]:
    """Partitions whose recorded version digest differs from that of ``current_version`` (sorted).

    ``partition_keys`` limits the answer to partitions that still exist; never-materialized
    partitions are not stale (there is nothing to rescore, only to score).
    """
    allowed = set(partition_keys) if partition_keys is not None else None
    current = version_digest(current_version)
    return sorted(p for p, v in recorded.items()
                  if v != current and (allowed is None or p in allowed))
