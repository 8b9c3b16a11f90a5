"""A corpus of damaged and hostile model folders: each is refused with a clear error, none crashes the process.

One real model is fitted and saved, then copied once per case and tampered with (one array, one
file or the manifest). After tampering the manifest's checksums are usually recomputed, as an
attacker (or a buggy writer) would, so the array checks themselves are exercised; the cases named
``*unsigned`` keep the old checksums. Every folder is loaded in a child process (an out-of-range
sparse index used to crash ``HybridRecommender.load`` with a segmentation fault, exit 139): a
crash is reported as that case's failure, and the remaining cases still run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recommender_data import synthetic_catalogue

from sunorecsys.recommenders.hybrid import HybridRecommender


def _arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _set(name: str, key: str, fn):
    """Tamper ``key`` of ``name``.npz with ``fn(array) -> array``."""
    def tamper(folder: Path) -> None:
        path = folder / f"{name}.npz"
        arrays = _arrays(path)
        arrays[key] = fn(arrays[key])
        np.savez(path, **arrays)
    return tamper


def _drop(name: str, key: str):
    def tamper(folder: Path) -> None:
        arrays = _arrays(folder / f"{name}.npz")
        del arrays[key]
        np.savez(folder / f"{name}.npz", **arrays)
    return tamper


def _add(name: str, key: str, value):
    def tamper(folder: Path) -> None:
        arrays = _arrays(folder / f"{name}.npz")
        arrays[key] = value
        np.savez(folder / f"{name}.npz", **arrays)
    return tamper


def _manifest(fn):
    def tamper(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        fn(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return tamper


def _put(a: np.ndarray, index, value) -> np.ndarray:
    a = a.copy()
    a[index] = value
    return a


def _truncate(name: str):
    def tamper(folder: Path) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return tamper


def _duplicate_song(folder: Path) -> None:
    songs = pd.read_parquet(folder / "songs.parquet")
    songs.loc[1, "song_id"] = songs.loc[0, "song_id"]
    songs.to_parquet(folder / "songs.parquet", index=False)


def _traversal(manifest: dict) -> None:
    manifest["files"]["../../../etc/passwd"] = manifest["files"].pop("prompt.npz")


# case -> (tamper, re-sign the manifest's checksums, expected error pattern)
CASES = {
    "tfidf_index_out_of_range": (_set("content", "tfidf_indices", lambda a: _put(a, 0, 10 ** 6)), True,
                                 r"content.npz:tfidf_indices: value 1000000 above"),
    "tfidf_negative_index": (_set("prompt", "tfidf_indices", lambda a: _put(a, -1, -3)), True,
                             r"prompt.npz:tfidf_indices: value -3 below 0"),
    "tfidf_indptr_falls": (_set("content", "tfidf_indptr", lambda a: _put(a, 2, a[1] - 1 if a[1] else 5)), True,
                           r"content.npz:tfidf_indptr"),
    "tfidf_indptr_wrong_length": (_set("content", "tfidf_indptr", lambda a: a[:-3]), True,
                                  r"content.npz:tfidf_indptr: shape"),
    "tfidf_nan": (_set("content", "tfidf_data", lambda a: _put(a, 0, np.nan)), True,
                  r"content.npz:tfidf_data: 1 non-finite"),
    "quality_inf": (_set("quality", "quality", lambda a: _put(a, 0, np.inf)), True,
                    r"quality.npz:quality: 1 non-finite value\(s\) \(inf\)"),
    "quality_above_one": (_set("quality", "quality", lambda a: _put(a, 0, 7.0)), True,
                          r"quality.npz:quality: value 7.0 above 1.0"),
    "quality_ranking_out_of_range": (_set("quality", "ranking", lambda a: _put(a, 0, 10 ** 9)), True,
                                     r"quality.npz:ranking: value 1000000000 above"),
    "als_factors_nan": (_set("user", "item_factors", lambda a: _put(a, (0, 0), np.nan)), True,
                        r"user.npz:item_factors: 1 non-finite"),
    "als_factors_wrong_shape": (_set("user", "item_factors", lambda a: a[:-1]), True,
                                r"user.npz:item_factors: shape"),
    "als_user_factors_wrong_rank": (_set("user", "user_factors", lambda a: a[:, :-1]), True,
                                    r"user.npz:user_factors: shape"),
    "als_factors_integers": (_set("user", "user_factors", lambda a: a.astype(np.int64)), True,
                             r"user.npz:user_factors: dtype int64, expected floating point"),
    "als_factors_complex": (_set("user", "item_factors", lambda a: a.astype(np.complex64)), True,
                            r"user.npz:item_factors: dtype complex64"),
    "als_pool_out_of_range": (_set("user", "pool", lambda a: _put(a, 0, 999)), True,
                              r"user.npz:pool: value 999 above"),
    "creator_codes_out_of_sync": (_set("user", "creators", lambda a: _put(a, 0, a.max() + 1)), True,
                                  r"creator"),
    "similarity_wrong_shape": (_set("item_cf", "similarity_shape", lambda a: a + 1), True,
                               r"item_cf.npz:similarity_shape is"),
    "ease_weights_inf": (_set("ease", "weights", lambda a: _put(a, (0, 1), -np.inf)), True,
                         r"ease.npz:weights: 1 non-finite"),
    "ease_pool_out_of_range": (_set("ease", "pool", lambda a: _put(a, -1, 10 ** 6)), True,
                               r"ease.npz:pool: value 1000000 above"),
    "listening_matrix_negative": (_set("user_items", "user_items_data", lambda a: _put(a, 0, -4.0)), True,
                                  r"user_items.npz:user_items_data: value -4.0 below"),
    "listening_times_wrong_length": (_set("user_items", "user_items_times", lambda a: a[1:]), True,
                                     r"user_items.npz:user_items_times: shape"),
    "missing_array": (_drop("user", "popularity"), True, r"user.npz: arrays .* are not the expected"),
    "extra_array": (_add("quality", "payload", np.zeros(3)), True, r"quality.npz: arrays .* are not the expected"),
    "pickled_object_array": (_set("quality", "quality", lambda a: np.array([{"boom": 1}] * len(a), dtype=object)),
                             True, r"allow_pickle"),
    "missing_file": (lambda folder: (folder / "prompt.npz").unlink(), False, r"prompt.npz: missing"),
    "truncated_npz_unsigned": (_truncate("user.npz"), False, r"user.npz: size or sha256 differs"),
    "truncated_npz": (_truncate("user.npz"), True, r"user.npz: unreadable npz"),
    "truncated_parquet": (_truncate("songs.parquet"), True, r"unreadable Parquet"),
    "duplicate_song_ids": (_duplicate_song, True, r"songs.parquet: duplicate song_id"),
    "manifest_wrong_version": (_manifest(lambda m: m.update(format_version=1)), False, r"format_version 1 is not 2"),
    "manifest_extra_key": (_manifest(lambda m: m.update(run="import os")), False, r"unexpected keys \['run'\]"),
    "manifest_unknown_parameter": (_manifest(lambda m: m["params"].update(exec_hook="x")), False,
                                   r"unknown parameters \['exec_hook'\]"),
    "manifest_negative_weight": (_manifest(lambda m: m["params"].update(item_cf_weight=-1.0)), False,
                                 r"item_cf_weight = -1.0 is not a finite weight"),
    "manifest_unknown_channel_param": (_manifest(lambda m: m["channel_params"]["user"].update(shell="rm")), False,
                                       r"channel_params\['user'\] has unknown keys"),
    "manifest_path_traversal": (_manifest(_traversal), False, r"'../../../etc/passwd' is not a plain file name"),
    "manifest_absolute_path": (_manifest(lambda m: m["files"].update({"/etc/shadow": {}})), False,
                               r"'/etc/shadow' is not a plain file name"),
    "manifest_not_json": (lambda folder: (folder / "manifest.json").write_bytes(b"\xff\xfe{"), False,
                          r"not a JSON manifest"),
    "manifest_a_list": (lambda folder: (folder / "manifest.json").write_text("[1, 2]"), False,
                        r"not a JSON object"),
}

RUNNER = textwrap.dedent("""
    import json, sys
    from sunorecsys.recommenders.hybrid import HybridRecommender
    for folder in sys.argv[1:]:
        print("START", folder, flush=True)
        try:
            model = HybridRecommender.load(folder)
            rows = model.recommend(song_ids=["lofi-0"], n=5)
            result = {"loaded": True, "scores_finite": all(abs(r["score"]) < 1e9 for r in rows)}
        except Exception as exc:
            result = {"loaded": False, "type": type(exc).__name__, "is_value_error": isinstance(exc, ValueError),
                      "message": str(exc)}
        print("RESULT", json.dumps(result), flush=True)
""")


def _resign(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        path = folder / name
        if path.is_file():
            manifest["files"][name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                       "bytes": path.stat().st_size}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _load_all(folders: list[Path]) -> dict[str, dict]:
    """Load every folder in child processes; a crash marks its folder and the rest run in a new child."""
    results: dict[str, dict] = {}
    pending = [str(f) for f in folders]
    while pending:
        proc = subprocess.run([sys.executable, "-c", RUNNER, *pending], capture_output=True, text=True,
                              timeout=600, check=False)
        started = None
        for line in proc.stdout.splitlines():
            if line.startswith("START "):
                started = line[6:]
            elif line.startswith("RESULT ") and started is not None:
                results[started] = json.loads(line[7:])
                started = None
        if started is not None:  # the child died inside this case
            results[started] = {"crashed": True, "returncode": proc.returncode, "stderr": proc.stderr[-2000:]}
        elif proc.returncode != 0 and not results:
            raise AssertionError(f"the loader child failed before any case: {proc.stderr[-2000:]}")
        pending = [p for p in pending if p not in results]
    return results


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    songs, interactions, quality = synthetic_catalogue()
    root = tmp_path_factory.mktemp("hostile_models")
    model = HybridRecommender(max_per_creator=None).fit(songs, interactions=interactions, quality_scores=quality)
    pristine = model.save(root / "pristine")
    folders = [pristine]
    for name, (tamper, resign, _) in CASES.items():
        folder = root / name
        shutil.copytree(pristine, folder)
        tamper(folder)
        if resign:
            _resign(folder)
        folders.append(folder)
    return {Path(k).name: v for k, v in _load_all(folders).items()}, model


def test_the_untampered_folder_loads_and_answers_like_the_fitted_model(loaded):
    results, _ = loaded
    assert results["pristine"] == {"loaded": True, "scores_finite": True}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_folder_is_refused_with_a_clear_error(loaded, case):
    results, _ = loaded
    result = results[case]
    assert not result.get("crashed"), f"the process crashed (exit {result.get('returncode')}): {result.get('stderr')}"
    assert not result["loaded"], f"{case} was loaded"
    assert result["is_value_error"], result
    assert result["type"] == "ModelFileError", result
    assert re.search(CASES[case][2], result["message"]), result["message"]


def test_no_manifest_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest"):
        HybridRecommender.load(tmp_path)
