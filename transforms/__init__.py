"""Beam PTransforms for the data stages, usable in any Beam pipeline without the framework."""
