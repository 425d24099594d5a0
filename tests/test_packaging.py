"""``python -m build`` makes a wheel and an sdist that install into a fresh venv and work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import transport

ROOT = Path(__file__).resolve().parent.parent
# What a checkout holds besides its sources: never copied, never shipped.
LOCAL = ("*.egg-info", "__pycache__", "*.pyc", ".*_cache", ".hypothesis", "build", "dist")
PACKAGE_DATA = ("py.typed", "*.proto", "*.json")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(*command: str | Path, cwd: Path) -> str:
    # Not the checkout's environment: the install must stand on its own.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _sources() -> set[str]:
    """Every file under transport/ a build must ship, relative to the checkout."""
    found: set[str] = set()
    for pattern in ("*.py", *PACKAGE_DATA):
        found |= {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / "transport").rglob(pattern)
            if "__pycache__" not in path.parts
        }
    return found


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel and the sdist, built from a clean copy of the checkout."""
    source = tmp_path_factory.mktemp("checkout") / "transport"
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "venv", "site", *LOCAL)
    )
    out = tmp_path_factory.mktemp("dist")
    # The sdist first, then the wheel from the unpacked sdist: the sdist must be enough.
    _run(sys.executable, "-m", "build", "--outdir", out, source, cwd=source)
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_the_wheel_ships_every_module_the_package_data_and_the_console_script(
    dist: dict[str, Path],
) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        [entry_points] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    assert {name for name in names if name.startswith("transport/")} == _sources()
    assert "transport/py.typed" in names
    assert "[console_scripts]\ntransport = transport.__main__:main" in scripts
    assert dist["wheel"].name.startswith("transport_grpc-")


def test_the_sdist_holds_what_a_build_needs_and_no_caches(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as sdist:
        members = [member.name for member in sdist.getmembers() if member.isfile()]
    top = dist["sdist"].name.removesuffix(".tar.gz")
    assert {name.split("/", 1)[0] for name in members} == {top}
    names = {name.split("/", 1)[1] for name in members}
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names
    assert {name for name in names if name.startswith("transport/")} == _sources()
    leaked = [
        name
        for name in names
        if any(part in {"__pycache__", ".pytest_cache", ".hypothesis"} for part in name.split("/"))
        or name.endswith(".pyc")
        or name.startswith(("tests/", ".venv"))
    ]
    assert not leaked


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_it_installs_into_a_fresh_venv_and_runs(
    kind: str, dist: dict[str, Path], tmp_path: Path
) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    bin_dir = environment / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    # A real install, dependencies resolved by pip (its cache makes it quick).
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", dist[kind], cwd=tmp_path)
    usage = _run(python, "-m", "transport", "--help", cwd=tmp_path)
    assert usage.startswith("usage: python -m transport ")
    script = bin_dir / ("transport.exe" if os.name == "nt" else "transport")
    by_script = _run(script, "--help", cwd=tmp_path)
    assert by_script.startswith("usage: transport ")
    assert by_script.replace("usage: transport ", "usage: python -m transport ", 1) == usage
    printed = _run(
        python,
        "-c",
        "import json, transport; print(json.dumps([transport.__file__, transport.__all__]))",
        cwd=tmp_path,
    )
    where, exported = json.loads(printed)
    # The installed copy, not the checkout.
    assert Path(where).resolve().is_relative_to(environment.resolve())
    assert exported == list(transport.__all__)
    assert (Path(where).parent / "py.typed").is_file()
