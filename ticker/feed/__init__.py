"""The live feed: channels, history and resume (core) and the wire formats."""
