"""The server's processes: starting granian and its workers after a trial load, and draining on shutdown."""
