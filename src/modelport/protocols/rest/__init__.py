"""The ASGI app and its codecs: KServe V1, Open Inference V2 JSON and binary, OpenAPI, the web page."""
