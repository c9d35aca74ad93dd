"""Foundation shared by every layer: signatures, the error tree, config, storage and the Model wrapper."""
