"""The local DAG runner."""
