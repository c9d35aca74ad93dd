"""The Open Inference V2 gRPC servicer and its generated stubs."""
