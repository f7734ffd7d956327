"""The Flink cluster fixture: installed and started by beam_ml.runners.flink.cluster, stopped afterwards.

A cluster that cannot be installed or started FAILS the test that asked for it,
with the reason; it never skips (a silent skip would hide a broken runner).
"""

import pytest

from beam_ml.runners.flink.cluster import FlinkCluster, FlinkClusterError


@pytest.fixture(scope="session")
def flink_cluster():
    cluster = FlinkCluster(taskmanagers=1)
    already_running = cluster.overview() is not None
    try:
        cluster.start()
    except FlinkClusterError as error:
        pytest.fail(f"the local Flink cluster could not be started: {error}", pytrace=False)
    yield cluster
    if not already_running:
        cluster.stop()
