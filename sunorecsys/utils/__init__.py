"""Import paths the guide uses (``sunorecsys.utils.music_flamingo_quality``)."""
