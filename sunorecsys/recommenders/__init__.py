"""Recommenders: the guide's ``HybridRecommender`` and ``QualityFilter``, one module per channel.

Imports are lazy so ``import sunorecsys.recommenders`` stays cheap (implicit loads on first fit).
"""

from __future__ import annotations

__all__ = ["HybridRecommender", "QualityFilter"]


def __getattr__(name: str):
    if name == "HybridRecommender":
        from sunorecsys.recommenders.hybrid import HybridRecommender
        return HybridRecommender
    if name == "QualityFilter":
        from sunorecsys.recommenders.quality_filter import QualityFilter
        return QualityFilter
    raise AttributeError(name)
