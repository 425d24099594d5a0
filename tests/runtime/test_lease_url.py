"""``open_lease``: the one way from ``--lease``/``lease=`` to a store, the URL read once."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from transport.__main__ import main
from transport.cli import serve as cli
from transport.runtime import daemon, etcd_lease
from transport.runtime.etcd_lease import EtcdLeaseStore, parse_etcd_url
from transport.runtime.lease import FileLeaseStore, LeaseStore
from transport.runtime.lease_url import open_lease

URL = "etcd://10.0.0.1:2379,[::1]:2380/transport/model"


def test_a_url_opens_an_etcd_store_and_anything_else_a_lease_file(tmp_path: Path) -> None:
    etcd = open_lease(URL)
    try:
        assert isinstance(etcd, EtcdLeaseStore)
        assert etcd.url == URL and etcd.key == "/transport/model"
    finally:
        etcd.close()
    for path in (str(tmp_path / "lease"), tmp_path / "lease"):
        file = open_lease(path)
        assert isinstance(file, FileLeaseStore) and file.path == tmp_path / "lease"
    assert open_lease(file) is file  # a store is used as it is


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("etcd://", "names no etcd endpoint (etcd://HOST:PORT/PREFIX/NAME)"),
        ("etcd://h:1/name", "must end in /PREFIX/NAME"),
        ("etcd://h/a/b", "endpoint 'h' is not HOST:PORT"),
    ],
)
def test_a_malformed_url_is_one_error_naming_the_form(url: str, complaint: str) -> None:
    expected = f"lease URL {re.escape(repr(url))}.*{re.escape(complaint)}"
    with pytest.raises(ValueError, match=expected):
        open_lease(url)


class ServedError(Exception):
    """Raised by the stand-in daemon once it saw what serve hands it."""


def test_serve_reads_its_etcd_url_once_and_builds_one_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses: list[str] = []
    built: list[EtcdLeaseStore] = []
    checked: list[LeaseStore] = []
    closed: list[LeaseStore] = []
    served: list[Any] = []
    init = EtcdLeaseStore.__init__

    def counting_parse(url: str) -> tuple[list[tuple[str, int]], str]:
        parses.append(url)
        return parse_etcd_url(url)

    def counting_init(self: EtcdLeaseStore, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        init(self, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def daemon(*args: Any, lease: Any = None, **options: Any) -> AsyncIterator[None]:
        served.append(lease)
        raise ServedError
        yield  # pragma: no cover (a generator, for asynccontextmanager)

    monkeypatch.setattr("transport.runtime.lease_url.parse_etcd_url", counting_parse)
    monkeypatch.setattr(EtcdLeaseStore, "__init__", counting_init)
    monkeypatch.setattr(EtcdLeaseStore, "check", lambda self, wait=False: checked.append(self))
    monkeypatch.setattr(EtcdLeaseStore, "close", lambda self: closed.append(self))
    monkeypatch.setattr(cli, "running", daemon)
    with pytest.raises(ServedError):
        main(["serve", "--lease", URL, "--instance-id", "a"])
    assert parses == [URL]
    assert len(built) == 1 and checked == built and served == built and closed == built


def test_serve_checks_and_serves_one_lease_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    checked: list[LeaseStore] = []
    served: list[Any] = []

    @contextlib.asynccontextmanager
    async def daemon(*args: Any, lease: Any = None, **options: Any) -> AsyncIterator[None]:
        served.append(lease)
        raise ServedError
        yield  # pragma: no cover (a generator, for asynccontextmanager)

    monkeypatch.setattr(FileLeaseStore, "check", lambda self, wait=False: checked.append(self))
    monkeypatch.setattr(cli, "running", daemon)
    with pytest.raises(ServedError):
        main(["serve", "--lease", str(tmp_path / "lease"), "--instance-id", "a"])
    assert len(checked) == 1 and served == checked


class Closing(FileLeaseStore):
    """A file store that says when it was closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


def test_the_old_names_still_open_check_and_close_stores(tmp_path: Path) -> None:
    assert daemon.lease_store is open_lease  # the owner story imports it by this name
    store = Closing(tmp_path / "lease")
    etcd_lease.close_store(store)
    assert store.closed
    with pytest.raises(ValueError, match="must end in /PREFIX/NAME"):
        etcd_lease.check_etcd_lease("etcd://h:1/name")
