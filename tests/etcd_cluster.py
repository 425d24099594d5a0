"""Real etcd for tests: the package's local cluster, and a mark that skips without etcd."""

from __future__ import annotations

import pytest

from transport.runtime.etcd_local import ETCD, EtcdCluster, free_port

__all__ = ["EtcdCluster", "free_port", "needs_etcd"]

#: Skips a test only when the ``etcd`` binary is missing (``.ci/run`` installs it).
needs_etcd = pytest.mark.skipif(
    ETCD is None, reason="etcd is not installed (apt-get install etcd-server etcd-client)"
)
