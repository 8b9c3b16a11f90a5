"""The guide's import path for the Music Flamingo scorer (re-exports from sunorecsys.quality)."""

from sunorecsys.quality.dimensions import DIMENSION_WEIGHTS, get_overall_quality_score
from sunorecsys.quality.flamingo import ModelWeightsMissing, MusicFlamingoQualityScorer
from sunorecsys.quality.parsing import parse_quality_response
from sunorecsys.quality.prompt import QUALITY_PROMPT_TEMPLATE

__all__ = ["DIMENSION_WEIGHTS", "QUALITY_PROMPT_TEMPLATE", "ModelWeightsMissing", "MusicFlamingoQualityScorer",
           "get_overall_quality_score", "parse_quality_response"]
