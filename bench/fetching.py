"""Cost of a dead audio host per run: 500 songs on a host that accepts and never answers, 500 on a
host that refuses, with the default fetch settings (30 s deadline per download, 8 at once, breaker
after 3 consecutive failures), against the baseline of one download at a time, each until its
deadline (what a run did before: 30 s per song), measured on a few songs in the same run.

Target (issue 9): a host that never answers costs < 60 s per run in total, whatever the number of
songs. Machine shared with other work: seconds are indicative; the bound is structural.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from soak_support import AudioHost

from sunorecsys.audio.errors import AudioUnavailable
from sunorecsys.audio.fetching import FetchSettings, prefetch_audio
from sunorecsys.audio.source import fetch_audio
from sunorecsys.paths import DataPaths


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="fetch-bench-"))
    stall, down = AudioHost(base), AudioHost(base)
    stall.set_mode("stall")
    down.set_mode("down")
    n = 500
    songs = ([{"song_id": f"s{i}", "audio_url": stall.url(f"s{i}.flac")} for i in range(n)]
             + [{"song_id": f"r{i}", "audio_url": down.url(f"r{i}.flac")} for i in range(n)])
    settings = FetchSettings(allowed_hosts=frozenset({"127.0.0.1"}), schemes=frozenset({"http"}))
    paths = DataPaths(base / "data")
    print(f"fetch bench: {2 * n} songs on a stalling host and a refusing host; deadline {settings.deadline_s:g} s, "
          f"{settings.workers} workers, breaker after {settings.breaker_threshold} failures (machine shared)")
    started = time.perf_counter()
    report = prefetch_audio(songs, paths, settings)
    seconds = time.perf_counter() - started
    print(f"  prefetch: {seconds:.1f} s for {2 * n} songs; reasons {report.reason_counts()}; "
          f"requests that reached the stalling host: {stall.requests}; hosts down: {report.open_hosts}")

    # baseline: sequential downloads, each until its deadline (a few songs, extrapolated)
    sample = 2
    started = time.perf_counter()
    for song in songs[:sample]:
        try:
            fetch_audio(song["audio_url"], song["song_id"], paths.audio_dir, allowed_hosts={"127.0.0.1"},
                        schemes={"http"}, timeout_s=settings.deadline_s)
        except AudioUnavailable:
            pass
    per_song = (time.perf_counter() - started) / sample
    print(f"  baseline, one at a time: {per_song:.1f} s per stalled song -> {per_song * n / 3600:.1f} h for "
          f"the {n} songs of the stalling host; ratio {per_song * n / seconds:.0f}x")
    print(f"  target < 60 s per run: {'met' if seconds < 60 else 'missed'}")
    stall.close()
    down.close()
    return 0 if seconds < 60 and len(report.failures) == 2 * n else 1


if __name__ == "__main__":
    sys.exit(main())
