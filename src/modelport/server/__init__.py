"""The ASGI server: one thin module per wire protocol over the transport-agnostic DataPlane."""
