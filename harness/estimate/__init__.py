"""Cheap estimates of a candidate's accuracy: zero-cost proxies, a weight-sharing
supernet, and how well each ranks like real training."""

from harness.estimate.base import (
    Estimator,
    estimator_class,
    estimator_names,
    get_estimator,
    register,
)

__all__ = ["Estimator", "estimator_class", "estimator_names", "get_estimator", "register"]
