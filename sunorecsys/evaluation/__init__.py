"""Offline evaluation of the recommenders: temporal split, ranking metrics, variants table, plot."""

from sunorecsys.evaluation.evaluate import EvaluationReport, evaluate_fitted, evaluate_recommender
from sunorecsys.evaluation.split import TemporalSplit, relevant_after_split, temporal_split

__all__ = [
           "EvaluationReport",
           "TemporalSplit",
           "evaluate_fitted",
           "evaluate_recommender",
           "relevant_after_split",
           "temporal_split",
]
