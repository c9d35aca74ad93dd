"""Protocol-neutral serving: request types, the DataPlane, the repository of versions, routing and batching."""
