"""What the server tells operators: metrics, access and payload logs, fault counters, the ops view's activity."""
