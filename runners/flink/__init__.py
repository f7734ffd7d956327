"""Flink helpers: a local Flink session cluster and the Beam Flink job server jar.

``python -m beam_ml.runners.flink.cluster install|start|status|stop`` (see
``cluster.py``).
"""
