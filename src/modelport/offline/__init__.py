"""Scoring without a server: big files on one machine (`modelport score`) and Spark DataFrames (`modelport.spark`)."""
