"""A JVM-free runtime for saved Apache Spark ML models and PipelineModels.

Reads what ``PipelineModel.write().save()`` wrote (``metadata/`` JSON and ``data/``
Parquet) with pyarrow and runs each stage as numpy code that follows Spark's own
semantics. Never imports pyspark.
"""
