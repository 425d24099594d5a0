"""One way from what a user writes after ``--lease`` (or passes as ``lease=``) to a store.

:func:`open_lease` reads the string once: an ``etcd://`` URL opens an
:class:`~.etcd_lease.EtcdLeaseStore`, anything else names a lease file. Every
caller (``serve``, ``health --runtime``, :func:`~.daemon.running`,
:func:`~.client.dial_leader`) goes through it, so a new kind of store is one
branch here.
"""

from __future__ import annotations

import os

from .etcd_lease import EtcdLeaseStore, is_etcd_url, parse_etcd_url
from .lease import FileLeaseStore, LeaseStore

__all__ = ["open_lease"]


def open_lease(
    lease: LeaseStore | str | os.PathLike[str], *, request_timeout: float = 1.0
) -> LeaseStore:
    """The store ``lease`` names: itself if a store, an ``etcd://`` URL's, or a lease file's.

    A malformed ``etcd://`` URL raises ``ValueError`` naming what is wrong and
    the form it needs (``etcd://HOST:PORT[,HOST:PORT...]/PREFIX/NAME``).
    ``request_timeout`` bounds each request to an etcd member. The caller
    closes a store it opened from a string (:meth:`~.lease.LeaseStore.close`).
    """
    if not isinstance(lease, (str, os.PathLike)):
        return lease
    if is_etcd_url(lease):
        endpoints, key = parse_etcd_url(str(lease))
        return EtcdLeaseStore(endpoints, key, request_timeout=request_timeout)
    return FileLeaseStore(lease)
