"""Wire protocols over the DataPlane: REST (KServe V1, Open Inference V2 JSON and binary, the web page) and gRPC V2."""
