"""Vendor the [project] dependencies of pyproject.toml as pure-Python wheels.

Two steps, so that only the first one may use the network (see docs/packaging.md):

  lock PYPROJECT WHEELDIR   resolve the dependencies with pip into WHEELDIR/*.whl and
                            pin them, with their sha256, in WHEELDIR/requirements.txt.
                            Nothing changed: no pip. No dependencies: no pip either.
  install PYPROJECT LOCK DEST
                            once LOCK is known to be made from PYPROJECT's dependencies,
                            install the locked wheels into DEST with pip, offline
                            (--no-index --find-links WHEELDIR). No dependencies: no pip.

So the package builds (dpkg-buildpackage, rpmbuild) need no network. Runs on Python 3.9+
(before 3.11, with tomli: Debian's python3-tomli).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

HEADER = """\
# Vendored into the package by `make build`: written by `make wheels` from the
# [project] dependencies of pyproject.toml. Delete this file to upgrade them.
"""
DEPENDENCIES = "# dependencies: "
ENTRY = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) --hash=sha256:([0-9a-f]{64})")
PURE_TAG = re.compile(r"-none-any\.whl$")
COMPILED = "Only pure-Python wheels are vendored: code that must be compiled comes from a Debian/RPM package"


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
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise VendorError(
                f"reading {pyproject} needs Python 3.11 or later, or tomli: apt-get install python3-tomli"
            ) from None
    try:
        with pyproject.open("rb") as handle:
            project = tomllib.load(handle).get("project", {})
    except tomllib.TOMLDecodeError as err:
        raise VendorError(f"{pyproject}: {err}") from None
    return list(project.get("dependencies", []))


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


def pip(arguments: list[str], failure: str, env: dict[str, str] | None = None) -> None:
    print("  PIP", " ".join(arguments), flush=True)
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *arguments]
    try:
        subprocess.run(command, check=True, env=env)
    except subprocess.CalledProcessError as err:
        raise VendorError(f"pip failed (its message is above). {failure}") from err


def pip_download(python_version: str, dest: Path, arguments: list[str]) -> None:
    """Only pure-Python wheels that run on python_version: the package stays Architecture: all."""
    command = ["download", "--only-binary=:all:", "--implementation", "py", "--abi", "none"]
    command += ["--platform", "any", "--python-version", python_version, "--dest", str(dest), *arguments]
    pip(command, f"{COMPILED} (docs/packaging.md).")


def pin_of(wheel: Path) -> Pin:
    if not PURE_TAG.search(wheel.name):
        raise VendorError(f"{wheel.name} is not a pure-Python wheel. {COMPILED}.")
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


def install(pyproject: Path, lockfile: Path, dest: Path, reserved: list[str]) -> None:
    current = current_lock(pyproject, lockfile)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if not current.pins:
        return
    wheeldir = lockfile.parent
    have = wheels_by_hash(wheeldir)
    for pin in current.pins:
        if pin.sha256 not in have:
            raise VendorError(f"no wheel in {wheeldir} matches {pin.name}=={pin.version}: run `make wheels`")
        pin_of(have[pin.sha256])
    # Offline, and deaf to the user's pip settings (as --isolated, but quiet for root, on pip 20 too):
    # the options below are all there is. No byte code: the packages compile at install time.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_ROOT_USER_ACTION="ignore")
    command = ["install", "--quiet", "--no-index", "--find-links", str(wheeldir), "--no-deps"]
    command += ["--no-compile", "--target", str(dest), "--require-hashes", "-r", str(lockfile)]
    pip(command, "The locked wheels could not be installed.", env)
    # The console scripts' #! line names the build's interpreter; the service has its own launcher.
    shutil.rmtree(dest / "bin", ignore_errors=True)
    for record in sorted(dest.glob("*.dist-info/RECORD")):
        rows = list(csv.reader(record.read_text(encoding="utf-8").splitlines()))
        for path, *_ in rows:
            if path.startswith("../") and not path.startswith("../../bin/"):
                raise VendorError(f"{record.parent.name} installs {path}: only importable code is vendored")
        # As dh_python3 does: dpkg and rpm own the files, not pip, and RECORD lists what is shipped.
        pips = {f"{record.parent.name}/{name}" for name in ("INSTALLER", "REQUESTED")}
        for path in pips:
            (dest / path).unlink(missing_ok=True)
        with record.open("w", encoding="utf-8", newline="") as handle:
            shipped = [row for row in rows if row[0] not in pips and not row[0].startswith("../")]
            csv.writer(handle, lineterminator="\n").writerows(shipped)
    for entry in sorted(dest.iterdir()):
        if entry.name.removesuffix(".py") in reserved:
            raise VendorError(f"a vendored wheel installs {entry.name}, a name of the service itself")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    lock_parser = commands.add_parser("lock", help="resolve pyproject's dependencies into wheels")
    lock_parser.add_argument("--python-version", default="3.9", help="oldest Python the package runs on")
    lock_parser.add_argument("pyproject", type=Path)
    lock_parser.add_argument("wheeldir", type=Path)
    install_parser = commands.add_parser("install", help="install the locked wheels, offline")
    install_parser.add_argument(
        "--reserve", action="append", default=[], help="a top-level name the service owns"
    )
    install_parser.add_argument("pyproject", type=Path)
    install_parser.add_argument("lockfile", type=Path)
    install_parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            lock(args.pyproject, args.wheeldir, args.python_version)
        else:
            install(args.pyproject, args.lockfile, args.dest, args.reserve)
    except (VendorError, OSError) as err:
        print(f"vendor: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
