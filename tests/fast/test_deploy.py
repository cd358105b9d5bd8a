"""The fleet tools the generated project ships: the Ansible playbook."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from support import require_tool, run


def test_ansible_playbook_passes_syntax_check(project: Path, tmp_path: Path) -> None:
    require_tool("ansible-playbook")
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible" / "tmp"),
    }
    result = run(
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", "deploy/ansible/site.yml"],
        cwd=project,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_playbook_starts_with_a_canary_and_stops_at_the_first_failure(project: Path) -> None:
    """What D7 runs for real; here, that a rendered playbook keeps the shape it is run with."""
    import yaml

    (play,) = yaml.safe_load((project / "deploy/ansible/site.yml").read_text())
    assert play["serial"] == "{{ batches | default([1, '50%', '100%']) }}"
    assert play["max_fail_percentage"] == 0
    (block,) = [task for task in play["tasks"] if "block" in task]
    assert block["rescue"][-1]["ansible.builtin.fail"]


def test_make_deploy_dry_run_runs_one_deploy_host_per_host_in_order(project: Path) -> None:
    hosts = ["h1", "root@h2", "[::1]"]
    result = run(
        ["make", "-n", "-C", str(project), "deploy", f"HOSTS={' '.join(hosts)}", "SSH=ssh -F my_config"]
    )
    assert result.returncode == 0, result.stderr
    calls = re.findall(
        r"sh deploy/deploy-host '([^']*)' 'dist/my-service_0.1.0_all.deb' build/deploy/(\d+)", result.stdout
    )
    assert calls == [(host, str(number)) for number, host in enumerate(hosts, start=1)]
    assert result.stdout.count("SSH='ssh -F my_config' SCP='scp -o BatchMode=yes' SUDO='sudo'") == 3


def test_make_deploy_without_hosts_explains_usage(project: Path) -> None:
    result = run(["make", "-C", str(project), "deploy"])
    assert result.returncode == 2
    assert 'usage: make deploy HOSTS="host1' in result.stderr


def test_make_deploy_refuses_a_quote_in_hosts(project: Path) -> None:
    result = run(["make", "-n", "-C", str(project), "deploy", "HOSTS=h1 h'2"])
    assert result.returncode == 2
    assert "an ssh destination has no quote in it" in result.stderr


@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/x", "h1;id", "h1 h2", "$(id)", ""])
def test_deploy_host_refuses_what_is_not_an_ssh_destination_before_any_ssh(
    project: Path, tmp_path: Path, host: str
) -> None:
    called = tmp_path / "called"
    result = run(
        ["sh", "deploy/deploy-host", host, "dist/none.deb", str(tmp_path / "result")],
        cwd=project,
        env={**os.environ, "SSH": f"touch {called}", "SCP": f"touch {called}", "SUDO": ""},
    )
    assert result.returncode == 2
    assert f"deploy: bad host '{host}': give an ssh destination" in result.stderr
    assert not called.exists()
    # Its summary line still comes, so make deploy reports every other host as well.
    assert (tmp_path / "result").read_text() == f"{host} ? -> ? failed 0s\n"


def test_install_and_check_refuses_a_deb_outside_a_staging_directory_and_removes_nothing(
    project: Path, tmp_path: Path
) -> None:
    deb = tmp_path / "x.deb"
    deb.write_text("not a package")
    result = run(["sh", "deploy/install-and-check", str(deb), "1"], cwd=project)
    assert result.returncode == 2
    assert "is not in a staging directory /var/tmp/deploy.XXXXXX" in result.stderr
    assert deb.read_text() == "not a package"


def test_shipped_deploy_files_never_disable_host_key_checking(project: Path) -> None:
    for path in [project / "Makefile", *sorted((project / "deploy").rglob("*"))]:
        if path.is_file():
            assert "StrictHostKeyChecking" not in path.read_text(), path
