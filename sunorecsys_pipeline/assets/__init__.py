"""Assets by concept: catalog, quality, recommender, analyst."""

from sunorecsys_pipeline.assets.analyst import analyst_views
from sunorecsys_pipeline.assets.catalog import interactions, raw_songs, songs
from sunorecsys_pipeline.assets.quality import (
                                                audio_checks,
                                                audiobox_scores,
                                                flamingo_scores,
                                                music_flamingo_scores_file,
                                                quality_scores,
)
from sunorecsys_pipeline.assets.recommender import hybrid_recommender, recommender_evaluation
from sunorecsys_pipeline.assets.spam import spam_flags

ALL_ASSETS = [raw_songs, songs, audio_checks, flamingo_scores, audiobox_scores, quality_scores,
              music_flamingo_scores_file, interactions, hybrid_recommender, recommender_evaluation,
              analyst_views, spam_flags]

__all__ = ["ALL_ASSETS", "analyst_views", "audio_checks", "audiobox_scores", "flamingo_scores", "hybrid_recommender",
           "interactions", "music_flamingo_scores_file", "quality_scores", "raw_songs", "recommender_evaluation",
           "songs", "spam_flags"]
