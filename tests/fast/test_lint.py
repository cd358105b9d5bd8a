"""Every generated file passes the linter of its kind, and every make target parses."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import upstart
from support import PACKAGE_PATHS, require_tool, run

TARGETS = [
    "help",
    "deps",
    "build",
    "run",
    "test",
    "lint",
    "install",
    "uninstall",
    "deb",
    "rpm",
    "package",
    "clean",
]
# Targets that need more than the make -n of a fresh project (a host, PyPI, or a VERSION).
OTHER_TARGETS = ["deploy", "publish", "wheels", "lint-deb", "lint-rpm", "release"]


def shell_checks(project: Path) -> dict[str, list[str]]:
    """The files that `make lint` gives shellcheck, dash -n and checkbashisms (from `make -n`)."""
    result = run(["make", "-n", "-C", str(project), "lint", *PACKAGE_PATHS])
    assert result.returncode == 0, result.stderr
    found = {
        "shellcheck": re.search(r"^shellcheck -x -s sh (.*)$", result.stdout, re.M),
        "dash": re.search(r'^for f in (.*); do dash -n "\$f"', result.stdout, re.M),
        "checkbashisms": re.search(r"^checkbashisms (.*)$", result.stdout, re.M),
    }
    return {tool: match.group(1).split() if match else [] for tool, match in found.items()}


def test_make_lint_checks_every_shell_script_as_built(project: Path) -> None:
    checks = shell_checks(project)
    files = checks["shellcheck"]
    assert checks == {"shellcheck": files, "dash": files, "checkbashisms": files}
    slug = project.name
    shipped = {f"debian/{slug}.postinst", f"debian/{slug}.postrm", "deploy/deploy-host", ".ci/install-tools"}
    assert shipped <= set(files)
    if (project / "init/sysv" / slug).exists():
        assert f"build/init/sysv/{slug}" in files and f"init/sysv/{slug}" not in files


@pytest.mark.ships()
def test_make_lint_finds_a_new_shell_script_by_its_first_line_and_fails_on_its_bashism(
    project: Path, tmp_path: Path
) -> None:
    require_tool("shellcheck", "dash", "checkbashisms", "make")
    copy = tmp_path / project.name
    shutil.copytree(project, copy, symlinks=True)
    (copy / "tools/new-script").write_text('#!/usr/bin/env sh\necho "$RANDOM"\n')
    assert "tools/new-script" in shell_checks(copy)["shellcheck"]
    result = run(["make", "-C", str(copy), "lint", *PACKAGE_PATHS])
    assert result.returncode != 0
    assert re.search(r"In tools/new-script line 2:.*\n.*\$RANDOM", result.stdout), result.stdout[-3000:]


@pytest.mark.ships("sysv")
def test_init_script_has_a_full_lsb_header(project: Path) -> None:
    script = (project / "build/init/sysv/my-service").read_text(encoding="utf-8")
    header = script.split("### BEGIN INIT INFO", 1)[1].split("### END INIT INFO", 1)[0]
    fields = dict(re.findall(r"^# ([A-Za-z-]+):\s*(.*)$", header, re.MULTILINE))
    assert fields["Provides"] == "my-service"
    assert fields["Required-Start"].split() == ["$local_fs", "$remote_fs", "$network", "$syslog"]
    assert fields["Default-Start"] == "2 3 4 5"
    assert fields["Default-Stop"] == "0 1 6"
    assert "--exec" not in script


def run_generator(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """The installed socket generator, its daemon and config taken from root instead of /."""
    generator = (root / "usr/lib/systemd/system-generators/my-service-generator").read_text(encoding="utf-8")
    rooted = generator.replace("/usr/sbin/my-service ", f"{root}/usr/sbin/my-service ")
    rooted = rooted.replace("/etc/my-service/my-service.conf ", f"{root}/etc/my-service/my-service.conf ")
    return run(["sh", "-c", rooted, "my-service-generator", str(out)])


@pytest.mark.ships("systemd")
def test_socket_generator_listens_where_the_config_says(installed: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(installed, root, symlinks=True)
    out = tmp_path / "generator"
    result = run_generator(root, out)
    assert (result.returncode, result.stderr) == (0, "")
    drop_in = out / "my-service.socket.d/listen.conf"
    assert drop_in.read_text(encoding="utf-8") == "[Socket]\nListenStream=127.0.0.1:8080\n"
    config = root / "etc/my-service/my-service.conf"
    text = config.read_text(encoding="utf-8")
    moved = text.replace("listen = 127.0.0.1", "listen = ::1").replace("port = 8080", "port = 9191")
    config.write_text(moved)
    assert run_generator(root, out).returncode == 0
    assert drop_in.read_text(encoding="utf-8") == "[Socket]\nListenStream=[::1]:9191\n"
    config.write_text(text.replace("port = 8080", "port = eighty"))
    result = run_generator(root, out)
    assert result.returncode == 1 and "port" in result.stderr, result.stderr


@pytest.mark.ships("systemd")
def test_systemd_units_verify_without_a_warning(installed: Path, tmp_path: Path) -> None:
    require_tool("systemd-analyze")
    root = tmp_path / "root"
    shutil.copytree(installed, root, symlinks=True)
    # verify needs the unit's dependencies (sysinit.target, ...) inside the root.
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    # verify runs no generators: put the socket's drop-in where it reads one.
    assert run_generator(root, root / "run/systemd/system").returncode == 0
    units = ["/lib/systemd/system/my-service.service", "/lib/systemd/system/my-service.socket"]
    result = run(["systemd-analyze", "verify", "--man=no", f"--root={root}", *units])
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.ships("systemd")
def test_systemd_unit_exposure_is_at_most_2(project: Path) -> None:
    require_tool("systemd-analyze")
    unit = project / "build/init/systemd/my-service.service"
    # --threshold counts tenths: 20 is an exposure of 2.0.
    result = run(["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)])
    assert result.returncode == 0, result.stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout).group(1))
    assert exposure <= 2.0


@pytest.mark.ships("systemd")
def test_systemd_unit_hardening_lines_are_sorted(project: Path) -> None:
    text = (project / "build/init/systemd/my-service.service").read_text(encoding="utf-8")
    service = text.split("[Service]", 1)[1].split("\n\n")
    hardening = [line for line in service[1].splitlines() if line]
    assert "NoNewPrivileges=yes" in hardening
    assert hardening == sorted(hardening)


def test_logrotate_config_debugs_clean(project: Path, tmp_path: Path) -> None:
    require_tool("logrotate")
    text = (project / "build/conf/logrotate/my-service").read_text(encoding="utf-8")
    assert not re.search(r"^\s*copytruncate", text, re.MULTILINE)
    assert re.search(r"^\s*create 0640 my-service my-service$", text, re.MULTILINE)
    assert re.search(r"^\s*postrotate$", text, re.MULTILINE)
    # The service user does not exist on this host: check the same file with one that does.
    config = tmp_path / "my-service"
    config.write_text(text.replace("my-service my-service", "daemon daemon"), encoding="utf-8")
    result = run(["logrotate", "-d", "-s", str(tmp_path / "state"), str(config)])
    assert result.returncode == 0, result.stderr
    assert not re.search(r"^error", result.stdout + result.stderr, re.MULTILINE | re.IGNORECASE)


@pytest.mark.ships("upstart")
def test_upstart_job_follows_the_grammar(project: Path) -> None:
    require_tool("sh")
    errors, scripts, stanzas = upstart.check(
        (project / "build/init/upstart/my-service.conf").read_text(encoding="utf-8")
    )
    assert errors == []
    assert "expect" not in stanzas
    assert stanzas["setuid"] == stanzas["setgid"] == ["my-service"]
    assert stanzas["respawn"] == [""]
    assert stanzas["respawn limit"] == ["10 5"]
    assert stanzas["start on"] == ["runlevel [2345]"]
    assert stanzas["stop on"] == ["runlevel [!2345]"]
    assert re.search(
        r"^\s*exec /usr/sbin/my-service --config /etc/my-service/my-service.conf", scripts[-1], re.M
    )


@pytest.mark.parametrize(
    ("job", "error"),
    [
        ("exec /bin/true\nexpect frok\n", "bad argument for 'expect'"),
        ("respawn limit ten 5\n", "bad argument for 'respawn limit'"),
        ("start on (runlevel [2345]\n", "unbalanced parentheses"),
        ("script\n  true\n", "has no 'end script'"),
        ("script\n  if true; then\nend script\n", "sh -n"),
        ("stat on runlevel [2345]\n", "unknown stanza"),
    ],
)
def test_upstart_checker_rejects_broken_jobs(job: str, error: str) -> None:
    errors, _, _ = upstart.check(job)
    assert any(error in message for message in errors), errors


@pytest.mark.parametrize("target", TARGETS)
def test_make_dry_run_of_every_target(project: Path, target: str) -> None:
    result = run(["make", "-n", "-C", str(project), target])
    assert result.returncode == 0, result.stderr


def test_make_help_is_the_default_and_lists_every_target(project: Path) -> None:
    result = run(["make", "-C", str(project)])
    assert result.returncode == 0
    listed = re.findall(r"^  ([a-z-]+) ", result.stdout, re.MULTILINE)
    assert sorted(listed) == sorted(TARGETS + OTHER_TARGETS)
