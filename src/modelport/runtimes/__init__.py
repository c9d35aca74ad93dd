"""What runs a model: one flavor module per framework, compiled kernels, and the JVM-free Spark ML runtime."""
