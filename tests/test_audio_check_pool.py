"""The signal checks' worker pool: real spawned processes checking real files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import soundfile as sf

MAIN = textwrap.dedent('''
    import os
    import sys

    if __name__ == "__mp_main__":  # a spawned worker importing this, the parent's main module
        open(os.path.join(os.environ["MARKS"], str(os.getpid())), "w").close()


    def main() -> None:
        from pathlib import Path

        import pandas as pd

        from sunorecsys.audio.checks import run_audio_checks
        from sunorecsys.paths import DataPaths

        root = Path(sys.argv[1])
        songs = pd.DataFrame({"song_id": ["a", "b", "c"], "duration_s": [3.0, 3.0, 3.0],
                              "audio_path": ["audio/a.flac", "audio/b.flac", "audio/missing.flac"]})
        checks = run_audio_checks(songs, DataPaths(root), workers=2, fetch=False)
        print(",".join(checks["status"]))


    if __name__ == "__main__":
        main()
''')


def test_pool_workers_check_songs_without_importing_the_parents_main_module(tmp_path):
    # Under `python -m sunorecsys_pipeline.demo` or Dagster's command line the parent's main module
    # is Dagster and the whole code location: workers importing it again doubled their start-up.
    root = tmp_path / "data"
    (root / "audio").mkdir(parents=True)
    t = np.arange(3 * 44100) / 44100
    for name, hz in (("a", 220.0), ("b", 330.0)):
        tone = 0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
        sf.write(root / "audio" / f"{name}.flac", np.stack([tone, tone], axis=1), 44100)
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "parent_main.py"
    script.write_text(MAIN)
    done = subprocess.run([sys.executable, str(script), str(root)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MARKS": str(marks)}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok,ok,missing"
    assert not list(marks.iterdir()), "a pool worker imported the parent's main module"
