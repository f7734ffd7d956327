"""Peers that cannot live in the project's venv, each installed by the suite in a venv of its own."""
