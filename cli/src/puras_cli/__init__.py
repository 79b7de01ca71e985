"""The puras command line."""
