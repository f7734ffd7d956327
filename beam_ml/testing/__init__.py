"""Helpers that start real servers (an S3 store) for tests and local trials."""
