"""The standard components: thin wrappers that apply a transform from beam_ml.transforms."""
