"""Turning a run's settings into Beam PipelineOptions for each engine."""
