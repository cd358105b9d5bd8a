"""Test hosts for deploy: copies of a Debian root, each with its own sshd, reached over ssh.

Each host is a `SysvRoot` (sysv.py): its own network namespace with only `lo`, so every host's
service listens on the same port (8080) without colliding. ssh reaches a host's sshd through a
ProxyCommand that enters that namespace and relays stdio to its loopback address (127.0.0.1:22,
or [::1]:22 for the host named by an IPv6 literal). Client and host keys are throwaway ones made
here, and the known_hosts file is written here: host keys are checked (StrictHostKeyChecking yes).
ssh, scp and Ansible get everything with `-F ssh_config`; ~/.ssh is never read nor written.
Ansible's apt module needs python3-apt on the hosts: that makes this root flavour of its own.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import wait_until
from roots import BASE_PACKAGES, Flavour
from sandbox import Spawned
from service import NAME
from sysv import SysvRoot, sysv_root

SSH_FLAVOUR = Flavour("ssh", (*BASE_PACKAGES, "openssh-server", "python3-apt"), allow_service_start=True)

# The ProxyCommand, run on the build machine inside a host's network namespace.
_RELAY = """
import os, socket, sys, threading
try:
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
except OSError as err:
    sys.exit(f"relay to {sys.argv[1]} port {sys.argv[2]}: {err}")
sock.settimeout(None)
def upstream():
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
while data := sock.recv(65536):
    os.write(1, data)
"""

_SSHD_CONFIG = """\
ListenAddress 127.0.0.1
ListenAddress ::1
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def _keygen(path: Path, comment: str) -> str:
    """A new passphrase-less ed25519 key at `path`; returns the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path.with_suffix(".pub").read_text().strip()


def break_health_check(project: Path) -> None:
    """Make the rendered project's daemon answer /health with 404: a build that fails every
    health gate, for the rollback rows (D3, D7) and the bench."""
    health = project / "src/my_service/health.py"
    text = health.read_text()
    assert text.count('"/health": health') == 1, f"{health}: no route of /health to take away"
    health.write_text(text.replace('"/health": health', '"/broken": health'))


@dataclass
class TestHost:
    name: str  # its HostKeyAlias, and how the tests call it
    destination: str  # what HOSTS says for it: a name, user@name or an IPv6 literal
    root: SysvRoot
    sshd: Spawned | None = None

    def start_sshd(self) -> None:
        self.root.path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.sshd = self.root.spawn(
            ["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_test_config"],
            log=self.root.work / f"sshd-{self.name}.log",
        )
        wait_until(
            lambda: "Server listening on 127.0.0.1" in self.sshd.log.read_text(),  # type: ignore[union-attr]
            10.0,
            what=f"sshd of {self.name}",
        )

    def kill_sshd(self) -> None:
        """sshd dies: the listener this test started and every session it forked, by pid."""
        assert self.sshd is not None
        table = self.root.processes()
        doomed = {self.sshd.pid}
        while grown := {p.pid for p in table if p.ppid in doomed} - doomed:
            doomed |= grown
        for pid in sorted(doomed):
            with contextlib.suppress(ProcessLookupError):
                self.root.kill(pid, signal.SIGKILL)
        self.sshd.wait()

    def version(self) -> str:
        """The installed version of the service, "" when it is not installed."""
        result = self.root.run(["dpkg-query", "-W", "-f=${Version}", NAME])
        return result.stdout if result.returncode == 0 else ""


@dataclass
class Fleet:
    hosts: list[TestHost]
    ssh_config: Path
    directory: Path = field(repr=False)

    def make_env(self) -> dict[str, str]:
        """make's variables: ssh options that are the user's (here: the test's ssh_config)."""
        return {"SSH": f"ssh -F {self.ssh_config}", "SCP": f"scp -F {self.ssh_config}", "SUDO": ""}

    def inventory(self) -> str:
        """An Ansible inventory of the hosts, reached as HOSTS names them (see `destinations`)."""
        lines = ["[all]"]
        for host in self.hosts:
            address = host.destination.split("@")[-1].strip("[]")
            lines.append(f"{host.name} ansible_host={address}")
        # Logged in as root: nothing to become (the roots have no sudo).
        lines += [
            "[all:vars]",
            "ansible_user=root",
            "ansible_become=false",
            "ansible_python_interpreter=/usr/bin/python3",
        ]
        return "\n".join(lines) + "\n"

    def ansible_env(self, home: Path) -> dict[str, str]:
        """ansible-playbook's environment: its own home, the test's ssh_config, no ssh multiplexer."""
        return {
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
            # No multiplexer: it would outlive the play (and a copy through one failed here under load).
            "ANSIBLE_SSH_ARGS": f"-F {self.ssh_config} -o ControlMaster=no",
            # One ssh connection per task instead of several.
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        }

    def destinations(self) -> str:
        return " ".join(host.destination for host in self.hosts)

    def __getitem__(self, name: str) -> TestHost:
        return next(host for host in self.hosts if host.name == name)


def _ssh_config(directory: Path, hosts: list[TestHost], key: Path) -> str:
    blocks = []
    for host in hosts:
        address = host.destination.split("@")[-1].strip("[]")
        pattern = address if ":" in address else host.name
        target = "::1" if ":" in address else "127.0.0.1"
        proxy = (
            f"setpriv --pdeathsig KILL -- nsenter -t {host.root.leader} --net -- "
            f"{sys.executable} -I {directory / 'relay.py'} %h %p"
        )
        blocks.append(
            f"Host {pattern}\n  HostName {target}\n  HostKeyAlias {host.name}\n  ProxyCommand {proxy}\n"
        )
    blocks.append(
        "Host *\n  User root\n  Port 22\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {directory / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n  ControlMaster no\n  ControlPath none\n"
        "  ConnectTimeout 5\n  ServerAliveInterval 2\n  ServerAliveCountMax 2\n  LogLevel ERROR\n"
    )
    return "\n".join(blocks)


@contextlib.contextmanager
def fleet(directory: Path, destinations: list[str]) -> Iterator[Fleet]:
    """Hosts named h1, h2... each reached as its entry in `destinations` (say "root@h2", "[::1]")."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "relay.py").write_text(_RELAY)
    key = directory / "id_ed25519"
    client_key = _keygen(key, "platform-skel-deploy-test")
    known_hosts = []
    with contextlib.ExitStack() as stack:
        hosts = []
        for number, destination in enumerate(destinations, start=1):
            name = f"h{number}"
            root = stack.enter_context(sysv_root(SSH_FLAVOUR, hostname=name))
            for old in root.path("/etc/ssh").glob("ssh_host_*"):
                old.unlink()
            host_key = directory / f"{name}_host_ed25519"
            known_hosts.append(f"{name} {_keygen(host_key, name).rsplit(' ', 1)[0]}")
            root.write_file("/etc/ssh/ssh_host_ed25519_key", host_key.read_text(), mode=0o600)
            root.write_file("/etc/ssh/sshd_test_config", _SSHD_CONFIG)
            root.path("/root/.ssh").mkdir(mode=0o700, exist_ok=True)
            root.write_file("/root/.ssh/authorized_keys", client_key + "\n", mode=0o600)
            host = TestHost(name, destination, root)
            host.start_sshd()
            hosts.append(host)
        (directory / "known_hosts").write_text("\n".join(known_hosts) + "\n")
        config = directory / "ssh_config"
        config.write_text(_ssh_config(directory, hosts, key))
        yield Fleet(hosts, config, directory)
