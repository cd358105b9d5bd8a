"""Vendor the [project] dependencies of pyproject.toml as pure-Python wheels.

Two steps, so that only the first one may use the network (see docs/packaging.md):

  lock PYPROJECT WHEELDIR   resolve the dependencies with pip into WHEELDIR/*.whl and
                            pin them, with their sha256, in WHEELDIR/requirements.txt.
                            Nothing changed: no pip. No dependencies: no pip either.
  unpack PYPROJECT LOCK DEST
                            unpack the locked wheels into DEST with the standard library,
                            once LOCK is known to be made from PYPROJECT's dependencies.

A pure-Python wheel installs by unpacking it (PEP 427), so the package builds
(dpkg-buildpackage, rpmbuild) need neither pip nor the network. Runs on Python 3.9+.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple

HEADER = """\
# Vendored into the package by `make build`: written by `make wheels` from the
# [project] dependencies of pyproject.toml. Delete this file to upgrade them.
"""
DEPENDENCIES = "# dependencies: "
ENTRY = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) --hash=sha256:([0-9a-f]{64})")
PURE_TAG = re.compile(r"-none-any\.whl$")


class VendorError(Exception):
    """Something the user must fix; the message says what."""


class Pin(NamedTuple):
    name: str
    version: str
    sha256: str


class Lock(NamedTuple):
    dependencies: list[str]
    pins: list[Pin]


def read_dependencies(pyproject: Path) -> list[str]:
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return _read_dependencies_without_toml(text)
    return list(tomllib.loads(text).get("project", {}).get("dependencies", []))


def _read_dependencies_without_toml(text: str) -> list[str]:
    """The `dependencies = [...]` array of [project], for Pythons without tomllib."""
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    array = project and re.search(r"^dependencies\s*=\s*(\[.*?\])", project.group(1), re.M | re.S)
    if not array:
        return []
    body = re.sub(r"#[^\n\"']*$", "", array.group(1), flags=re.M)
    try:
        value = ast.literal_eval(body)
    except (SyntaxError, ValueError) as err:
        raise VendorError(f"cannot read [project] dependencies without tomllib: {err}") from err
    return [str(item) for item in value]


def read_lock(path: Path) -> Lock | None:
    if not path.exists():
        return None
    dependencies = None
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(DEPENDENCIES):
            dependencies = json.loads(line[len(DEPENDENCIES) :])
        elif line and not line.startswith("#"):
            match = ENTRY.fullmatch(line.split("  #", 1)[0].strip())
            if not match:
                raise VendorError(f"{path}: not a pinned, hashed requirement: {line}")
            pins.append(Pin(*match.groups()))
    if dependencies is None:
        return None
    return Lock(dependencies, pins)


def write_lock(path: Path, lock: Lock) -> None:
    lines = [HEADER + DEPENDENCIES + json.dumps(lock.dependencies)]
    lines += [f"{pin.name}=={pin.version} --hash=sha256:{pin.sha256}" for pin in lock.pins]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheels_by_hash(wheeldir: Path) -> dict[str, Path]:
    return {sha256(wheel): wheel for wheel in sorted(wheeldir.glob("*.whl"))}


def pip_download(python_version: str, dest: Path, arguments: list[str]) -> None:
    """Only pure-Python wheels that run on python_version: the package stays Architecture: all."""
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input"]
    command += ["--only-binary=:all:", "--implementation", "py", "--abi", "none", "--platform", "any"]
    command += ["--python-version", python_version, "--dest", str(dest), *arguments]
    print("  PIP", " ".join(command[3:]), flush=True)
    try:
        subprocess.run(command, check=True)
    except subprocess.CalledProcessError as err:
        raise VendorError(
            "pip failed (its message is above). Only pure-Python wheels are vendored: a "
            "dependency with compiled code comes from a Debian/RPM package (docs/packaging.md)."
        ) from err


def pin_of(wheel: Path) -> Pin:
    if not PURE_TAG.search(wheel.name):
        raise VendorError(f"{wheel.name} is not a pure-Python wheel; use the distribution's package")
    name, version = wheel.name.split("-")[:2]
    return Pin(re.sub(r"[-_.]+", "-", name).lower(), version, sha256(wheel))


def lock(pyproject: Path, wheeldir: Path, python_version: str) -> None:
    lockfile = wheeldir / "requirements.txt"
    dependencies = read_dependencies(pyproject)
    current = read_lock(lockfile)
    wheeldir.mkdir(parents=True, exist_ok=True)
    if current is not None and current.dependencies == dependencies:
        have = wheels_by_hash(wheeldir)
        if any(pin.sha256 not in have for pin in current.pins):
            pip_download(python_version, wheeldir, ["--no-deps", "--require-hashes", "-r", str(lockfile)])
        keep = {pin.sha256 for pin in current.pins}
        missing = [pin.name for pin in current.pins if pin.sha256 not in wheels_by_hash(wheeldir)]
        if missing:
            raise VendorError(f"wheels that match {lockfile} are missing: {', '.join(missing)}")
        _prune(wheeldir, keep)
        os.utime(lockfile)
        return
    pins: list[Pin] = []
    if dependencies:
        with tempfile.TemporaryDirectory(dir=wheeldir) as tmp:
            pip_download(python_version, Path(tmp), ["--", *dependencies])
            for wheel in sorted(Path(tmp).iterdir()):
                pins.append(pin_of(wheel))
                os.replace(wheel, wheeldir / wheel.name)
    _prune(wheeldir, {pin.sha256 for pin in pins})
    write_lock(lockfile, Lock(dependencies, sorted(pins)))


def _prune(wheeldir: Path, keep: set[str]) -> None:
    for digest, wheel in wheels_by_hash(wheeldir).items():
        if digest not in keep:
            wheel.unlink()


def current_lock(pyproject: Path, lockfile: Path) -> Lock:
    """The lock, if it was made from pyproject's dependencies: file times prove nothing after a checkout."""
    current = read_lock(lockfile)
    if current is None:
        raise VendorError(f"{lockfile} is missing or has no dependencies line: run `make wheels`")
    dependencies = read_dependencies(pyproject)
    if current.dependencies != dependencies:
        raise VendorError(
            f"{lockfile} was made from the dependencies {json.dumps(current.dependencies)}, but "
            f"{pyproject} lists {json.dumps(dependencies)}: run `make wheels` to lock them again"
        )
    return current


def unpack(pyproject: Path, lockfile: Path, dest: Path, reserved: list[str]) -> None:
    current = current_lock(pyproject, lockfile)
    have = wheels_by_hash(lockfile.parent) if current.pins else {}
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    owners: dict[str, str] = {}
    for pin in current.pins:
        wheel = have.get(pin.sha256)
        if wheel is None:
            raise VendorError(
                f"no wheel in {lockfile.parent} matches {pin.name}=={pin.version}: run `make wheels`"
            )
        _unpack_wheel(wheel, dest, set(reserved), owners)


def _unpack_wheel(wheel: Path, dest: Path, reserved: set[str], owners: dict[str, str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = {name.split("/", 1)[0] for name in names if re.fullmatch(r"[^/]+\.dist-info/WHEEL", name)}
        if len(dist_info) != 1:
            raise VendorError(f"{wheel.name}: expected one .dist-info directory")
        metadata = archive.read(f"{dist_info.pop()}/WHEEL").decode()
        if "Root-Is-Purelib: true" not in metadata.splitlines():
            raise VendorError(f"{wheel.name} is not a pure-Python wheel (Root-Is-Purelib is not true)")
        data = wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".data/"
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or "__pycache__" in name.split("/"):
                continue
            if name.startswith(data):
                scheme, _, name = name[len(data) :].partition("/")
                if scheme == "scripts":
                    continue  # console scripts: the service has its own launcher
                if scheme not in ("purelib", "platlib"):
                    raise VendorError(f"{wheel.name} installs {scheme} files, which a vendored wheel cannot")
            path = PurePosixPath(name)
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise VendorError(f"{wheel.name}: unsafe path {info.filename!r}")
            if path.parts[0].removesuffix(".py") in reserved:
                raise VendorError(f"{wheel.name} installs {path.parts[0]}, a name of the service itself")
            if name in owners:
                raise VendorError(f"{wheel.name} and {owners[name]} both install {name}")
            owners[name] = wheel.name
            target = dest.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    lock_parser = commands.add_parser("lock", help="resolve pyproject's dependencies into wheels")
    lock_parser.add_argument("--python-version", default="3.9", help="oldest Python the package runs on")
    lock_parser.add_argument("pyproject", type=Path)
    lock_parser.add_argument("wheeldir", type=Path)
    unpack_parser = commands.add_parser("unpack", help="unpack the locked wheels")
    unpack_parser.add_argument(
        "--reserve", action="append", default=[], help="a top-level name the service owns"
    )
    unpack_parser.add_argument("pyproject", type=Path)
    unpack_parser.add_argument("lockfile", type=Path)
    unpack_parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            lock(args.pyproject, args.wheeldir, args.python_version)
        else:
            unpack(args.pyproject, args.lockfile, args.dest, args.reserve)
    except (VendorError, OSError, zipfile.BadZipFile) as err:
        print(f"vendor: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
