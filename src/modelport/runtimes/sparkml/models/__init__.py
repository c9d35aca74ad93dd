"""Spark ML predictors: classification, regression, clustering."""
