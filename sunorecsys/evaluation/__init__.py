"""Offline evaluation of the recommenders: temporal and leave-last-k splits, bare baselines, metrics, plot."""

from sunorecsys.evaluation.compare import paired_bootstrap
from sunorecsys.evaluation.evaluate import EvaluationReport, evaluate_fitted, evaluate_recommender
from sunorecsys.evaluation.protocols import LeaveLastKSplit, NewItemsSplit, leave_last_k, new_items_split
from sunorecsys.evaluation.split import TemporalSplit, relevant_after_split, temporal_split

__all__ = [
           "EvaluationReport",
           "LeaveLastKSplit",
           "NewItemsSplit",
           "TemporalSplit",
           "evaluate_fitted",
           "evaluate_recommender",
           "leave_last_k",
           "new_items_split",
           "paired_bootstrap",
           "relevant_after_split",
           "temporal_split",
]
