"""Model stage: item encoders (text / id), the causal transformer, sizes and FLOPs accounting."""

from __future__ import annotations

from scalerec.model.config import ModelConfig
from scalerec.model.recommender import SequentialRecommender

__all__ = ["ModelConfig", "SequentialRecommender"]
