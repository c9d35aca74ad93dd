"""``modelport.spark``: score Spark DataFrames with a model, or through a running service.

Re-exports :mod:`modelport.offline.dataframes`; pyspark is imported only when a function runs.
"""

from __future__ import annotations

from modelport.offline.dataframes import predict, predict_via_endpoint, score_with_spark

__all__ = ["predict", "predict_via_endpoint", "score_with_spark"]
