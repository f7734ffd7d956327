"""The benchmark suite: each figure the README or an issue quotes comes from a script here."""
