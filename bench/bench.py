"""Measure `make deb` of the default generated project against its floor and its peer.

In one run on this machine, the median wall time of several runs of:
- `make deb`, cold (after `make clean`);
- `make deb` again, with nothing changed;
- a bare `dpkg-buildpackage -us -uc -b` of the same tree (what `make deb` wraps);
- the floor: `dpkg-deb --build --root-owner-group` of the same staged tree;
- dh-virtualenv (`--builtin-venv`, `--buildsystem=none`) building the same app;
then the sizes of the two .debs, and of the installed daemon: start to READY=1, and
idle RSS. Prints a table with the ratios and the goals, and writes it to
bench/results.md. Not a test: `make bench` in the template repository runs it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.md"
SYSTEM_PYTHON = "/usr/bin/python3"

DHV_RULES = """#!/usr/bin/make -f
%:
\tdh $@ --with python-virtualenv --buildsystem=none

override_dh_virtualenv:
\tdh_virtualenv --builtin-venv --python {python}
"""
DHV_CONTROL = """Source: {slug}
Section: net
Priority: optional
Maintainer: Bench <bench@example.com>
Build-Depends: debhelper-compat (= 13), dh-virtualenv, python3-venv
Standards-Version: 4.6.2

Package: {slug}
Architecture: any
Depends: ${{misc:Depends}}, ${{shlibs:Depends}}, python3
Description: {slug} built with dh-virtualenv, for comparison
 The same daemon, in a virtualenv under /opt/venvs.
"""
DHV_PYPROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{slug}"
version = "0.1.0"
requires-python = ">=3.9"

[project.scripts]
{slug} = "{package}.daemon:main"

[tool.setuptools]
package-dir = {{"" = "src"}}
packages = ["{package}"]
"""


@dataclass
class Row:
    what: str
    seconds: float


def sh(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(
            f"bench: {' '.join(command)} failed in {cwd}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    sh(command, cwd, env)
    return time.perf_counter() - start


def median_of(runs: int, measure, prepare=None) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        if prepare is not None:
            prepare()
        samples.append(measure())
    return statistics.median(samples)


def render(workdir: Path) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(workdir / "project")))


def bare_tree(project: Path, dest: Path) -> Path:
    """The sources that `make deb` hands to dpkg-buildpackage, as a plain tree."""
    dest.mkdir(parents=True)
    shutil.copytree(project, dest / "src", ignore=shutil.ignore_patterns("build", "dist"))
    return dest / "src"


def dh_virtualenv_tree(project: Path, slug: str, package: str, dest: Path) -> Path:
    """The same daemon as a Python package that dh-virtualenv installs into a venv."""
    src = dest / "src"
    shutil.copytree(project / "src", src / "src")
    shutil.copytree(project / "debian", src / "debian", ignore=shutil.ignore_patterns(slug + ".*"))
    (src / "debian" / "control").write_text(DHV_CONTROL.format(slug=slug))
    (src / "debian" / "rules").write_text(DHV_RULES.format(python=SYSTEM_PYTHON))
    (src / "debian" / "rules").chmod(0o755)
    (src / "pyproject.toml").write_text(DHV_PYPROJECT.format(slug=slug, package=package))
    return src


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def daemon_figures(deb: Path, slug: str, workdir: Path, runs: int) -> tuple[float, int]:
    """Start to READY=1 (median) and idle VmRSS in kB of the daemon unpacked from the .deb."""
    root = workdir / "installed"
    sh(["dpkg-deb", "-x", str(deb), str(root)])
    # As the postinst does (py3compile): the installed code has its bytecode.
    sh([SYSTEM_PYTHON, "-m", "compileall", "-q", str(root / "usr" / "lib" / slug)])
    config = workdir / "bench.conf"
    notify_path = workdir / "notify"
    ready_times, rss = [], 0
    for _ in range(runs):
        config.write_text(f"[service]\nlisten = 127.0.0.1\nport = {free_port()}\nlog_file = -\n")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify_path.unlink(missing_ok=True)
            notify.bind(str(notify_path))
            notify.settimeout(10)
            env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
            start = time.perf_counter()
            daemon = subprocess.Popen(
                [str(root / "usr" / "sbin" / slug), "--config", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                while b"READY=1" not in notify.recv(4096):
                    pass
                ready_times.append(time.perf_counter() - start)
                time.sleep(1)
                status = Path(f"/proc/{daemon.pid}/status").read_text()
                rss = max(
                    rss,
                    int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]),
                )
            finally:
                daemon.terminate()
                daemon.wait(timeout=30)
    return statistics.median(ready_times), rss


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    release = (
        dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        .get("PRETTY_NAME", "")
        .strip('"')
    )
    return f"{release}, kernel {platform.release()}, {os.cpu_count()} x {cpu}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each build (default 5)")
    parser.add_argument("--dhv-runs", type=int, default=3, help="runs of the dh-virtualenv build (default 3)")
    args = parser.parse_args()
    for tool in ("make", "dpkg-buildpackage", "dpkg-deb", "dh_virtualenv", SYSTEM_PYTHON):
        if shutil.which(tool) is None:
            sys.exit(
                f"bench: {tool} is missing; as root: apt-get install -y debhelper dh-python dh-virtualenv"
            )

    with tempfile.TemporaryDirectory(prefix="platform-skel-bench-") as tmp:
        workdir = Path(tmp)
        project = render(workdir)
        slug = project.name
        package = next((project / "src").iterdir()).name
        make = ["make", "--no-print-directory"]

        cold = median_of(
            args.runs, lambda: timed([*make, "deb"], project), lambda: sh([*make, "clean"], project)
        )
        noop = median_of(args.runs, lambda: timed([*make, "deb"], project))
        (deb,) = (project / "dist").glob("*.deb")

        bare = bare_tree(project, workdir / "bare")
        bare_build = median_of(args.runs, lambda: timed(["dpkg-buildpackage", "-us", "-uc", "-b"], bare))

        stage = workdir / "stage"
        shutil.copytree(project / "build" / "deb" / "src" / "debian" / slug, stage, symlinks=True)
        floor_deb = workdir / "floor.deb"
        floor = median_of(
            args.runs,
            lambda: timed(["dpkg-deb", "--build", "--root-owner-group", str(stage), str(floor_deb)], workdir),
        )

        dhv = dh_virtualenv_tree(project, slug, package, workdir / "dhv")
        dhv_build = median_of(args.dhv_runs, lambda: timed(["dpkg-buildpackage", "-us", "-uc", "-b"], dhv))
        (dhv_deb,) = (workdir / "dhv").glob("*.deb")
        listing = subprocess.run(["dpkg-deb", "-c", str(dhv_deb)], capture_output=True, text=True, check=True)
        if f"./opt/venvs/{slug}/bin/{slug}" not in listing.stdout:
            sys.exit(f"bench: the dh-virtualenv package lacks /opt/venvs/{slug}/bin/{slug}")

        ready, rss = daemon_figures(deb, slug, workdir, args.runs)
        ours_size, dhv_size = deb.stat().st_size, dhv_deb.stat().st_size

    checks = [
        (
            "cold `make deb` / bare `dpkg-buildpackage -b`",
            f"{cold / bare_build:.2f}x",
            "<= 1.2x",
            cold <= 1.2 * bare_build,
        ),
        ("dh-virtualenv / cold `make deb`", f"{dhv_build / cold:.1f}x", ">= 8x", dhv_build >= 8 * cold),
        ("no-op `make deb`", f"{noop:.3f} s", "<= 0.2 s", noop <= 0.2),
        (
            "dh-virtualenv .deb / default .deb",
            f"{dhv_size / ours_size:.0f}x",
            ">= 100x",
            dhv_size >= 100 * ours_size,
        ),
        ("daemon start to READY=1", f"{ready:.3f} s", "<= 0.3 s", ready <= 0.3),
        ("daemon idle RSS", f"{rss / 1024:.1f} MB", "<= 15 MB", rss <= 15 * 1024),
    ]
    lines = [
        "# `make deb` benchmark",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()};",
        f"median of {args.runs} runs ({args.dhv_runs} for dh-virtualenv). Run again with `make bench`.",
        "",
        "| build of the default project | median wall time | .deb size |",
        "|---|---:|---:|",
        f"| `make deb`, cold | {cold:.3f} s | {ours_size:,} B |",
        f"| `make deb`, nothing changed | {noop:.3f} s | |",
        f"| bare `dpkg-buildpackage -us -uc -b` of the same tree | {bare_build:.3f} s | |",
        f"| floor: `dpkg-deb --build --root-owner-group` of the staged tree | {floor:.3f} s | |",
        f"| dh-virtualenv (`--builtin-venv`, `--buildsystem=none`) | {dhv_build:.3f} s | {dhv_size:,} B |",
        "",
        "| goal | measured | target | met |",
        "|---|---:|---:|:---:|",
        *(
            f"| {what} | {value} | {target} | {'yes' if ok else '**no**'} |"
            for what, value, target, ok in checks
        ),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    RESULTS.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
