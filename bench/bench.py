"""Measure `make deb` of the default generated project, and its daemon under load, against
their floors and their peers.

In one run on this machine, the median wall time of several runs of:
- `make deb`, cold (after `make clean`);
- `make deb` again, with nothing changed;
- a bare `dpkg-buildpackage -us -uc -b` of the same tree (what `make deb` wraps);
- the floor: `dpkg-deb --build --root-owner-group` of the same staged tree;
- dh-virtualenv (`--builtin-venv`, `--buildsystem=none`) building the same app;
then the sizes of the two .debs, and of the installed daemon: start to READY=1, and
idle RSS. Then the daemon's /health under load, beside the standard library's
ThreadingHTTPServer serving the same document (the peer a user would reach for), both on
loopback under Debian's python3: latency with 200 idle and 50 slowloris connections open,
1000 clients at once, RSS idle, under that load and after it. Prints tables with the ratios
and the goals, and writes them to bench/results.md. Last, the generated project's own `make test`,
what its developers run after every change. Not a test: `make bench` in the template
repository runs it; `bench.py --serving` measures the daemon under load only (seconds),
`bench.py --make-test` the generated project's `make test` only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE / "tests"))

from support import idle_and_slowloris  # noqa: E402  (the load C1 of the tests puts on)

RESULTS = Path(__file__).resolve().parent / "results.md"
SERVING_HEADING = "# The daemon under load"
MAKE_TEST_HEADING = "# The generated project's `make test`"
SYSTEM_PYTHON = "/usr/bin/python3"
# The peer: ThreadingHTTPServer answering GET /health with the daemon's document, with the
# daemon's deadline per socket operation and room for a burst in its listen backlog.
PEER = r"""
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Health(BaseHTTPRequestHandler):
    timeout = 5

    def do_GET(self):
        body = json.dumps({"status": "ok", "message": "ok", "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server(ThreadingHTTPServer):
    request_queue_size = 4096

server = Server(("127.0.0.1", 0), Health)
print(f"ready: listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""

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


def render(workdir: Path, template: Path = TEMPLATE) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(template), no_input=True, output_dir=str(workdir / "project")))


def render_at(workdir: Path, ref: str) -> Path:
    """The default project of the template as it was at the git commit ref."""
    archive = subprocess.run(["git", "-C", str(TEMPLATE), "archive", ref], capture_output=True, check=True)
    (workdir / "template").mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(workdir / "template")], input=archive.stdout, check=True)
    return render(workdir, workdir / "template")


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


READY = re.compile(r"ready: listening on 127\.0\.0\.1:(\d+)")
REQUEST = b"GET /health HTTP/1.0\r\n\r\n"


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def get(port: int) -> float:
    """Seconds for one GET /health on a connection of its own."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(REQUEST)
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    if b" 200 OK\r\n" not in reply.split(b"\n", 1)[0] + b"\n":
        sys.exit(f"bench: /health answered {reply[:100]!r}")
    return time.perf_counter() - start


def latencies_with_idle_and_slow_clients(port: int, requests: int) -> list[float]:
    """GET /health `requests` times, one after the other, while 200 clients that send
    nothing and 50 that send a header byte every 0.2 s stay connected."""
    with idle_and_slowloris(port):
        return [get(port) for _ in range(requests)]


def at_once(port: int, count: int) -> tuple[int, float]:
    """`count` clients connected at the same time, each sending GET /health: how many were
    answered with 200, and the seconds until the last reply."""
    selector = selectors.DefaultSelector()
    replies: dict[socket.socket, bytes] = {}
    start = time.perf_counter()
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        replies[sock] = b""
    deadline = time.monotonic() + 60
    while selector.get_map() and time.monotonic() < deadline:
        for key, events in selector.select(1.0):
            sock = key.fileobj  # type: ignore[assignment]
            try:
                if events & selectors.EVENT_WRITE:
                    sock.send(REQUEST)
                    selector.modify(sock, selectors.EVENT_READ)
                    continue
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            replies[sock] += chunk
            if not chunk:
                selector.unregister(sock)
    took = time.perf_counter() - start
    for sock in replies:
        sock.close()
    selector.close()
    return sum(reply.startswith(b"HTTP/1.0 200 OK\r\n") for reply in replies.values()), took


class PeakRss(threading.Thread):
    """The highest VmRSS of a process while it runs, sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.join()


@dataclass
class Serving:
    idle_rss: int  # kB
    p50: float
    p99: float
    burst: float  # seconds for `count` clients at once, median
    answered: int  # of the last burst
    peak_rss: int  # kB
    back_to_idle: float | None  # seconds after the bursts; None: not within 5 s


def serving(command: list[str], env: dict[str, str], output: Path, count: int, runs: int) -> Serving:
    """Start a server that logs READY into `output`, then load it."""
    with output.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not (ready := READY.search(output.read_text())):
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(f"bench: {command} did not get ready: {output.read_text()[-2000:]}")
            time.sleep(0.02)
        port = int(ready.group(1))
        get(port)
        time.sleep(1)
        idle_rss = rss_kb(server.pid)
        latencies = latencies_with_idle_and_slow_clients(port, 200)
        time.sleep(1)
        with PeakRss(server.pid) as peak:
            bursts = [at_once(port, count) for _ in range(runs)]
        settled = time.monotonic()
        back_to_idle = None
        while time.monotonic() - settled < 5:
            if rss_kb(server.pid) <= idle_rss + 1024:
                back_to_idle = time.monotonic() - settled
                break
            time.sleep(0.05)
        return Serving(
            idle_rss=idle_rss,
            p50=statistics.median(latencies),
            p99=statistics.quantiles(latencies, n=100)[98],
            burst=statistics.median(took for _, took in bursts),
            answered=bursts[-1][0],
            peak_rss=peak.peak,
            back_to_idle=back_to_idle,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def serving_report(workdir: Path, project: Path, runs: int) -> list[str]:
    """The daemon under load beside ThreadingHTTPServer, as lines of results.md."""
    count = 1000
    src = project / "src"
    package = next(src.iterdir()).name
    config = workdir / "serving.conf"
    log = workdir / "serving.log"
    config.write_text(f"[service]\nlisten = 127.0.0.1\nport = 0\nlog_file = {log}\n")
    sh([SYSTEM_PYTHON, "-m", "compileall", "-q", str(src)])
    env = {**os.environ, "PYTHONPATH": str(src)}
    ours = serving([SYSTEM_PYTHON, "-m", package, "--config", str(config)], env, log, count, runs)
    peer_script = workdir / "peer.py"
    peer_script.write_text(PEER)
    peer = serving([SYSTEM_PYTHON, str(peer_script)], dict(os.environ), workdir / "peer.log", count, runs)

    def back(result: Serving) -> str:
        return f"{result.back_to_idle:.2f} s" if result.back_to_idle is not None else "not within 5 s"

    rows = [(f"the daemon (`{package}`, logging every request)", ours), ("ThreadingHTTPServer", peer)]
    checks = [
        ("/health p99, 200 idle + 50 slowloris", f"{ours.p99 * 1000:.1f} ms", "<= 50 ms", ours.p99 <= 0.05),
        (f"{count} clients at once, all answered", f"{ours.burst:.3f} s", "<= 2 s",
         ours.burst <= 2 and ours.answered == count),
        ("RSS under that load", f"{ours.peak_rss / 1024:.1f} MB", "<= 20 MB", ours.peak_rss <= 20 * 1024),
        ("RSS back to idle (+1 MB) after it", back(ours), "<= 5 s", ours.back_to_idle is not None),
        ("idle RSS", f"{ours.idle_rss / 1024:.1f} MB", "<= 15 MB", ours.idle_rss <= 15 * 1024),
        ("requests/s at once: daemon / ThreadingHTTPServer", f"{peer.burst / ours.burst:.1f}x", ">= 2x",
         peer.burst >= 2 * ours.burst),
        ("RSS under load: daemon / ThreadingHTTPServer", f"{ours.peak_rss / peer.peak_rss:.2f}x", "<= 0.5x",
         ours.peak_rss <= 0.5 * peer.peak_rss),
    ]  # fmt: skip
    return [
        SERVING_HEADING,
        "",
        f"/health on loopback under {SYSTEM_PYTHON}; latency over 200 requests, one after the other; "
        f"{count} clients at once, median of {runs} bursts. Alone: `bench/bench.py --serving`.",
        "",
        f"| server | idle RSS | /health p50 / p99 (200 idle + 50 slowloris) | {count} at once "
        "| answered | peak RSS | back to idle |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {r.idle_rss / 1024:.1f} MB | {r.p50 * 1000:.1f} / {r.p99 * 1000:.1f} ms "
            f"| {r.burst:.3f} s | {r.answered} | {r.peak_rss / 1024:.1f} MB | {back(r)} |"
            for name, r in rows
        ),
        "",
        "| goal | measured | target | met |",
        "|---|---:|---:|:---:|",
        *goal_rows(checks),
        "",
    ]


def wall_and_cpu(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall time, and the CPU time (user + system) of everything the command ran."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(command, cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def make_test_figures(project: Path, runs: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Medians of (wall, CPU) time of `make test`, and of its pytest part alone, after a first
    run that builds, and makes the project's venv: the pytest part runs in it too, with no
    plugin that this venv has and the project's has not."""
    make = ["make", "--no-print-directory", "-C", str(project), "test", f"PYTHON={sys.executable}"]
    sh(make)
    figures = []
    for command in (make, [str(project / ".venv/bin/pytest"), "-q", "tests"]):
        samples = [wall_and_cpu(command, project) for _ in range(runs)]
        wall, cpu = (statistics.median(sample) for sample in zip(*samples))
        figures.append((wall, cpu))
    return figures[0], figures[1]


def make_test_report(project: Path, runs: int, baseline: tuple[str, Path] | None = None) -> list[str]:
    """The default project's `make test` (pytest, then bats), as lines of results.md; beside
    it, the same from the template at an older commit when baseline names one. The CPU time
    shows how much of the wall time is waiting, whatever else the machine runs."""
    projects = [
        ("this template", project),
        *([(f"the template at {baseline[0]}", baseline[1])] if baseline else []),
    ]
    rows = [(name, *make_test_figures(path, runs)) for name, path in projects]
    total = rows[0][1][0]
    checks = [("`make test` of the generated project", f"{total:.2f} s", "<= 5 s", total <= 5)]
    if baseline:
        old = rows[1][1][0]
        checks.append(
            (f"`make test`: this template / {baseline[0]}", f"{total / old:.2f}x", "< 1x", total < old)
        )
    return [
        MAKE_TEST_HEADING,
        "",
        f"Median of {runs} runs after a first one, on {os.cpu_count()} cores with a load average of "
        f"{os.getloadavg()[0]:.1f} at the end (other jobs share the machine). "
        "Alone: `bench/bench.py --make-test [--baseline COMMIT]`.",
        "",
        "| project | `make test` wall / CPU | its pytest part wall / CPU |",
        "|---|---:|---:|",
        *(
            f"| {name} | {make[0]:.2f} / {make[1]:.2f} s | {pytest[0]:.2f} / {pytest[1]:.2f} s |"
            for name, make, pytest in rows
        ),
        "",
        "| goal | measured | target | met |",
        "|---|---:|---:|:---:|",
        *goal_rows(checks),
        "",
    ]


def replace_section(heading: str, lines: list[str]) -> None:
    """Write lines in place of results.md's section under heading, or after the others."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    parts = [f"# {part}".rstrip() for part in re.split(r"(?m)^# ", old) if part.strip()]
    sections = {part.split("\n", 1)[0]: part for part in parts}
    sections[heading] = "\n".join(lines).rstrip()
    RESULTS.write_text("\n\n".join(sections.values()) + "\n", encoding="utf-8")


def goal_rows(checks: list[tuple[str, str, str, bool]]) -> list[str]:
    return [
        f"| {what} | {value} | {target} | {'yes' if ok else '**no**'} |" for what, value, target, ok in checks
    ]


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
    parser.add_argument("--bursts", type=int, default=5, help="bursts of 1000 clients at once (default 5)")
    parser.add_argument("--serving", action="store_true", help="measure the daemon under load only")
    parser.add_argument("--make-test", action="store_true", help="measure the generated `make test` only")
    parser.add_argument(
        "--baseline", metavar="COMMIT", help="with --make-test: beside the template at COMMIT"
    )
    args = parser.parse_args()
    if args.serving or args.make_test:
        with tempfile.TemporaryDirectory(prefix="platform-skel-bench-") as tmp:
            project = render(Path(tmp))
            if args.serving:
                heading, lines = SERVING_HEADING, serving_report(Path(tmp), project, args.bursts)
            else:
                baseline = (
                    (args.baseline, render_at(Path(tmp) / "baseline", args.baseline))
                    if args.baseline
                    else None
                )
                heading, lines = MAKE_TEST_HEADING, make_test_report(project, args.runs, baseline)
        print("\n".join(lines))
        replace_section(heading, lines)
        return 0
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
        serving_lines = serving_report(workdir, project, args.bursts)
        make_test_lines = make_test_report(project, args.runs)
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
        *goal_rows(checks),
        "",
        *serving_lines,
        *make_test_lines,
    ]
    report = "\n".join(lines)
    print(report)
    RESULTS.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
