"""Rows D1-D5 of RELIABILITY.md: `make -j deploy` to real hosts over ssh (see hosts.py).

One fleet of four hosts serves the whole module; each test first brings the fleet to the
version it starts from (with `make deploy` itself), so the tests do not depend on their order.
The hosts are named in HOSTS the ways users name them: a name from ssh_config, user@name, and
an IPv6 literal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hosts
import pytest
import service
from conftest import ServiceDebs, _make_deb
from support import require_tool, run, signing_key

DESTINATIONS = ["h1", "root@h2", "h3", "[::1]"]
V1, V2 = "0.1.0", "0.2.0"
# A failing host waits this long for /health before it rolls back.
HEALTH_TIMEOUT = "3"


@dataclass(frozen=True)
class Summary:
    before: str
    after: str
    result: str


@dataclass(frozen=True)
class Deploy:
    returncode: int
    stdout: str
    output: str  # stdout and stderr
    summary: dict[str, Summary]  # by destination, as HOSTS gave it

    def lines_of(self, destination: str) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith(f"{destination}: ")]


@pytest.fixture(scope="module")
def fleet(system_host: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[hosts.Fleet]:
    require_tool("ssh", "scp", "ssh-keygen")
    with hosts.fleet(tmp_path_factory.mktemp("fleet"), DESTINATIONS) as made:
        yield made


@pytest.fixture(scope="module")
def broken_deb(service_debs: ServiceDebs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.3.0, whose daemon runs but answers /health with 404: it fails every health check."""
    project = tmp_path_factory.mktemp("broken") / "my-service"
    shutil.copytree(service_debs.project, project, ignore=shutil.ignore_patterns("build", "dist"))
    hosts.break_health_check(project)
    result = run(
        ["dch", "-v", "0.3.0", "--distribution", "unstable", "--force-distribution", "Broken on purpose."],
        cwd=project,
        env={"DEBFULLNAME": "Platform Team", "DEBEMAIL": "platform@example.com", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return _make_deb(project)


def deploy(fleet: hosts.Fleet, project: Path, deb: Path, destinations: str = "") -> Deploy:
    result = run(
        ["make", "-C", str(project), "-j8", "--no-print-directory", "deploy",
         f"HOSTS={destinations or fleet.destinations()}", f"DEPLOY_DEB={deb}",
         f"HEALTH_TIMEOUT={HEALTH_TIMEOUT}",
         *(f"{name}={value}" for name, value in fleet.make_env().items())],
        timeout=300,
    )  # fmt: skip
    summary = {}
    for line in result.stdout.splitlines():
        found = re.fullmatch(r"(\S+) (\S+) -> (\S+) (upgraded|rolled-back|unreachable|failed) \d+s", line)
        if found:
            summary[found[1]] = Summary(found[2], found[3], found[4])
    return Deploy(result.returncode, result.stdout, result.stdout + result.stderr, summary)


def ensure(fleet: hosts.Fleet, project: Path, deb: Path, version: str) -> None:
    """Bring every host to `version` with make deploy (so that the host keeps its .deb)."""
    if all(host.version() == version for host in fleet.hosts):
        return
    done = deploy(fleet, project, deb)
    assert done.returncode == 0, done.output


def serves(host: hosts.TestHost, version: str, port: int = service.PORT) -> None:
    assert host.version() == version
    reply = host.root.http_get(port, "/health")
    assert reply.status == 200, (host.name, reply)
    assert json.loads(reply.body)["status"] == "ok"


def test_D1_make_j_deploy_of_v1_to_every_host_serves_v1(
    fleet: hosts.Fleet, service_debs: ServiceDebs
) -> None:
    done = deploy(fleet, service_debs.project, service_debs.v1)
    assert done.returncode == 0, done.output
    assert list(done.summary) == DESTINATIONS, done.output
    for host in fleet.hosts:
        assert done.summary[host.destination].after == V1
        assert done.summary[host.destination].result == "upgraded"
        serves(host, V1)
        # Every line the deploy printed about this host says so; the health gate ran on it.
        assert any(
            re.search(rf": http://127\.0\.0\.1:{service.PORT}/health: 200$", line)
            for line in done.lines_of(host.destination)
        )
    for line in done.output.splitlines()[: -len(DESTINATIONS) - 1]:
        assert line.split(": ", 1)[0] in DESTINATIONS, line


def test_D2_v2_to_every_host_while_a_client_polls_each(fleet: hosts.Fleet, service_debs: ServiceDebs) -> None:
    ensure(fleet, service_debs.project, service_debs.v1, V1)
    answered = {host.name: 0 for host in fleet.hosts}
    stop = threading.Event()

    def poll(host: hosts.TestHost) -> None:
        while not stop.is_set() and answered[host.name] < 1000:
            if host.root.http_get(service.PORT, "/health").status == 200:
                answered[host.name] += 1
            time.sleep(0.05)

    pollers = [threading.Thread(target=poll, args=(host,)) for host in fleet.hosts]
    for poller in pollers:
        poller.start()
    try:
        done = deploy(fleet, service_debs.project, service_debs.v2)
    finally:
        stop.set()
        for poller in pollers:
            poller.join()
    assert done.returncode == 0, done.output
    for host in fleet.hosts:
        assert done.summary[host.destination] == Summary(V1, V2, "upgraded")
        serves(host, V2)
        assert answered[host.name] > 0, answered


def test_D3_a_v3_that_fails_its_health_check_is_rolled_back_on_every_host(
    fleet: hosts.Fleet, service_debs: ServiceDebs, broken_deb: Path
) -> None:
    ensure(fleet, service_debs.project, service_debs.v2, V2)
    done = deploy(fleet, service_debs.project, broken_deb)
    assert done.returncode != 0, done.output
    for host in fleet.hosts:
        assert done.summary[host.destination] == Summary(V2, V2, "rolled-back"), done.output
        assert any("rolling back" in line for line in done.lines_of(host.destination))
        serves(host, V2)


def test_D4_an_unreachable_host_and_one_whose_sshd_dies_are_reported_the_others_finish(
    fleet: hosts.Fleet, service_debs: ServiceDebs
) -> None:
    ensure(fleet, service_debs.project, service_debs.v1, V1)
    unreachable, dying = fleet["h3"], fleet["h2"]
    unreachable.kill_sshd()
    killed = threading.Event()

    def kill_when_the_copy_arrives() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if list(dying.root.path("/var/tmp").glob("deploy.*/*.deb")):
                dying.kill_sshd()
                killed.set()
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_when_the_copy_arrives)
    killer.start()
    try:
        done = deploy(fleet, service_debs.project, service_debs.v2)
    finally:
        killer.join()
        for host in (unreachable, dying):
            host.start_sshd()
    assert killed.is_set()
    assert done.returncode != 0, done.output
    assert done.summary["h3"].result == "unreachable", done.output
    assert done.summary["root@h2"].result == "failed", done.output
    for host in (fleet["h1"], fleet["h4"]):
        assert done.summary[host.destination] == Summary(V1, V2, "upgraded"), done.output
        serves(host, V2)
    assert unreachable.version() == V1
    for host in fleet.hosts:
        audit = host.root.run(["dpkg", "--audit"])
        assert (audit.returncode, audit.stdout) == (0, ""), (host.name, audit)


def test_D5_the_health_gate_uses_the_port_of_the_hosts_own_config(
    fleet: hosts.Fleet, service_debs: ServiceDebs
) -> None:
    ensure(fleet, service_debs.project, service_debs.v1, V1)
    host = fleet["h1"]
    config = host.root.path(service.CONFIG)
    original = config.read_text()
    config.write_text(re.sub(r"(?m)^port = .*$", "port = 8081", original))
    try:
        host.root.run([service.INIT, "restart"], check=True)
        done = deploy(fleet, service_debs.project, service_debs.v2, host.destination)
        assert done.returncode == 0, done.output
        assert done.summary[host.destination] == Summary(V1, V2, "upgraded")
        assert any(line.endswith(":8081/health: 200") for line in done.lines_of(host.destination)), (
            done.output
        )
        serves(host, V2, port=8081)
    finally:
        config.write_text(original)
        host.root.run([service.INIT, "restart"], check=True)


def publish(project: Path, repo: Path, deb: Path, key: str, env: dict[str, str]) -> None:
    result = run(
        ["make", "-C", str(project), "publish", f"REPO={repo}", f"KEY={key}", f"DEPLOY_DEB={deb}"], env=env
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def serve_repository(host: hosts.TestHost, repo: Path) -> None:
    """The repository as the host's file:///srv/apt (the hosts have no other network)."""
    inside = host.root.path("/srv/apt")
    shutil.rmtree(inside, ignore_errors=True)
    shutil.copytree(repo, inside)
    host.root.run(["chmod", "-R", "a+rX", "/srv/apt"], check=True)


def test_D6_hosts_pull_v2_from_the_signed_repository_and_refuse_one_signed_by_another_key(
    fleet: hosts.Fleet, service_debs: ServiceDebs, broken_deb: Path, tmp_path: Path
) -> None:
    require_tool("reprepro", "gpg")
    ensure(fleet, service_debs.project, service_debs.v1, V1)
    project = service_debs.project
    with signing_key() as (env, key), signing_key() as (other_env, other_key):
        publish(project, tmp_path / "repo", service_debs.v2, key, env)
        publish(project, tmp_path / "other", broken_deb, other_key, other_env)
    sources = (project / "deploy/apt/my-service.sources").read_text()
    sources = sources.replace("https://apt.example.com/my-service", "file:///srv/apt")
    update = ["apt-get", "update", "--error-on=any"]
    mirror = fleet.hosts[0].root.path("/etc/apt/sources.list").read_text()
    try:
        for host in fleet.hosts:
            serve_repository(host, tmp_path / "repo")
            host.root.path("/etc/apt/keyrings").mkdir(parents=True, exist_ok=True)
            host.root.copy_in(tmp_path / "repo/my-service.gpg", "/etc/apt/keyrings/my-service.gpg")
            host.root.write_file("/etc/apt/sources.list.d/my-service.sources", sources)
            # The hosts have no network: their one source is this repository.
            host.root.write_file("/etc/apt/sources.list", "")
            host.root.run(update, check=True)
        # The hosts pull v2 from it: apt-get on one, the playbook (no deb=) on the others.
        fleet["h1"].root.run(["apt-get", "install", "-y", "-o", "Dpkg::Use-Pty=0", service.NAME], check=True)
        result = playbook(fleet, project, tmp_path, "-e", '{"batches": ["100%"]}')
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        for host in fleet.hosts:
            serves(host, V2)
            kept = host.root.run(["dpkg-deb", "-f", "/var/lib/my-service-deploy/rollback.deb", "Version"])
            assert kept.stdout.strip() == V2, kept

        for host in fleet.hosts:
            serve_repository(host, tmp_path / "other")
            refused = host.root.run(update)
            assert refused.returncode == 100, refused
            assert "NO_PUBKEY" in refused.stderr or "not signed" in refused.stderr, refused.stderr
            host.root.run(["apt-get", "install", "-y", "-o", "Dpkg::Use-Pty=0", service.NAME])
            serves(host, V2)
    finally:
        for host in fleet.hosts:
            host.root.sh(
                "rm -rf /srv/apt /etc/apt/sources.list.d/my-service.sources /etc/apt/keyrings/my-service.gpg"
                " /var/lib/apt/lists/*_*"
            )
            host.root.write_file("/etc/apt/sources.list", mirror)


def playbook(
    fleet: hosts.Fleet, project: Path, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook deploy/ansible/site.yml, run from the project's root as its docs say."""
    require_tool("ansible-playbook")
    inventory = tmp_path / "inventory"
    inventory.write_text(fleet.inventory())
    return run(
        ["ansible-playbook", "-i", str(inventory), "deploy/ansible/site.yml",
         "-e", f"health_timeout={HEALTH_TIMEOUT}", *args],
        cwd=project, env={**os.environ, **fleet.ansible_env(tmp_path / "ansible")}, timeout=600,
    )  # fmt: skip


def batches(output: str) -> list[list[str]]:
    """The hosts of each batch (sorted), in order: with `serial`, the play runs once per batch."""
    found: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith("PLAY [") and not line.startswith("PLAY RECAP"):
            found.append([])
        elif found and (reached := re.match(r"ok: \[(h\d)\]", line)) and reached[1] not in found[-1]:
            found[-1].append(reached[1])
    return [sorted(batch) for batch in found]


def dpkg_log_lines(host: hosts.TestHost) -> int:
    return len(host.root.path("/var/log/dpkg.log").read_text().splitlines())


def test_D7_ansible_rolls_out_in_batches_and_a_broken_canary_stops_the_rollout(
    fleet: hosts.Fleet, service_debs: ServiceDebs, broken_deb: Path, tmp_path: Path
) -> None:
    ensure(fleet, service_debs.project, service_debs.v1, V1)
    result = playbook(fleet, service_debs.project, tmp_path, "-e", f"deb={service_debs.v2}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert batches(result.stdout) == [["h1"], ["h2", "h3"], ["h4"]], result.stdout[-6000:]
    for host in fleet.hosts:
        serves(host, V2)

    others = {host.name: dpkg_log_lines(host) for host in fleet.hosts[1:]}
    result = playbook(fleet, service_debs.project, tmp_path, "-e", f"deb={broken_deb}")
    assert result.returncode != 0, result.stdout[-6000:]
    assert batches(result.stdout) == [["h1"]], result.stdout[-6000:]
    assert "h1 failed its health check and was rolled back to 0.2.0" in result.stdout
    serves(fleet["h1"], V2)
    for host in fleet.hosts[1:]:
        serves(host, V2)
        assert dpkg_log_lines(host) == others[host.name], f"{host.name} was touched"


def test_D8_the_playbook_takes_a_deb_path_relative_to_where_it_is_run(
    fleet: hosts.Fleet, service_debs: ServiceDebs, tmp_path: Path
) -> None:
    # Whichever version the hosts are not on (the play may downgrade); in one batch, to be quick.
    deb, version = (service_debs.v1, V1) if fleet["h1"].version() == V2 else (service_debs.v2, V2)
    relative = deb.relative_to(service_debs.project)
    assert not relative.is_absolute()
    result = playbook(
        fleet, service_debs.project, tmp_path, "-e", f"deb={relative}", "-e", '{"batches": ["100%"]}'
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert batches(result.stdout) == [["h1", "h2", "h3", "h4"]]
    for host in fleet.hosts:
        serves(host, version)
