"""sunorecsys: a quality-aware recommender for catalogues of AI-generated (Suno) songs.

The library knows nothing of Dagster; the code location ``sunorecsys_pipeline`` calls it.
"""

__version__ = "0.1.0"
