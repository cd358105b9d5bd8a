"""The fleet tools the generated project ships: the Ansible playbook."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_ansible_playbook_rolls_out_in_batches_and_stops_on_a_failed_one(project: Path) -> None:
    text = (project / "deploy/ansible/site.yml").read_text()
    assert "serial: \"{{ batch | default('25%') }}\"" in text
    assert "max_fail_percentage: 0" in text
    assert 'url: "{{ health_url }}"' in text
    assert "health_url: http://127.0.0.1:8080/health" in text
