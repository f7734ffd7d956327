"""The metadata store: artifacts, executions, contexts, events, lineage, cache look-up."""
