#!/usr/bin/env python
"""The guide's script: compute Music Flamingo quality scores (thin wrapper over sunorecsys).

    python compute_music_flamingo_quality.py --input sunorecsys/data/curl/all_songs.json \
        --output data/music_flamingo_scores.json --cache-dir data/music_flamingo_scores --device cuda

See ``--help`` for every flag. Weights are never downloaded implicitly: pass --model PATH or set
HF_HOME to a Hugging Face cache that holds nvidia/music-flamingo-hf.
"""

import sys

from sunorecsys.quality.commands import guide_script_main

if __name__ == "__main__":
    sys.exit(guide_script_main())
