"""Offline evaluation of the recommenders: temporal and leave-last-k splits, bare baselines, metrics, plot."""

from sunorecsys.evaluation.compare import paired_bootstrap
from sunorecsys.evaluation.evaluate import EvaluationReport, evaluate_fitted, evaluate_recommender
from sunorecsys.evaluation.protocols import LeaveLastKSplit, leave_last_k
from sunorecsys.evaluation.split import TemporalSplit, relevant_after_split, temporal_split

__all__ = [
           "EvaluationReport",
           "LeaveLastKSplit",
           "TemporalSplit",
           "evaluate_fitted",
           "evaluate_recommender",
           "leave_last_k",
           "paired_bootstrap",
           "relevant_after_split",
           "temporal_split",
]
