"""Hostile answers (RELIABILITY.md H1-H4, H6): refused with a clear message and nothing
on disk, or rendered inert with every output still passing its linter."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import upstart
from support import PACKAGE_PATHS, TEMPLATE, cookiecutter_cli, require_tool, run

FREE_TEXT = ["project_name", "description", "maintainer_name"]
# {canary} is a file that a payload would create if anything ran it.
PAYLOADS = {
    "semicolon": "x; touch {canary}",
    "command-substitution": "$(touch {canary})",
    "backticks": "`touch {canary}`",
    "single-quotes": "'; touch {canary}; '",
    "double-quotes": '"; touch {canary}; "',
    "newline": "x\ntouch {canary}",
    "jinja-expression": "{{{{ cycler.__init__.__globals__.os.system('touch {canary}') }}}}",
    "jinja-statement": "{{% set x = cycler.__init__.__globals__.os.system('touch {canary}') %}}",
    "jinja-arithmetic": "{{{{ 7 * 7 }}}}",
}


def generate(tmp_path: Path, *answers: str, force: bool = False) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    flags = ["--overwrite-if-exists"] if force else []
    return cookiecutter_cli("--no-input", *flags, "-o", str(out), str(TEMPLATE), *answers, cwd=tmp_path)


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def assert_refused(result: subprocess.CompletedProcess[str], tmp_path: Path, field: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    clear = (
        re.search(rf"ERROR: {field}\b.*; ", result.stderr) or "answers are data, not code" in result.stdout
    )
    assert clear, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == {"out"}


def lint_rendered(project: Path) -> None:
    """The project's own `make lint` and the fast tier's other linters, over one accepted render."""
    require_tool("shellcheck", "dash", "checkbashisms", "make")
    result = run(["make", "-C", str(project), "lint", *PACKAGE_PATHS])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    unit = project / "build/init/systemd/my-service.service"
    result = run(["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)])
    assert result.returncode == 0, result.stderr
    errors, _, _ = upstart.check((project / "build/init/upstart/my-service.conf").read_text())
    assert errors == []
    for path in [*(project / "src").rglob("*.py"), project / "build/bin/my-service"]:
        assert run(["python3", "-m", "py_compile", str(path)]).returncode == 0, path
    assert run(["make", "-n", "-C", str(project), "deb", "rpm"]).returncode == 0


@pytest.mark.parametrize("field", FREE_TEXT)
@pytest.mark.parametrize("payload", PAYLOADS, ids=list(PAYLOADS))
def test_h1_metacharacters_in_free_text_run_nothing(tmp_path: Path, field: str, payload: str) -> None:
    canary = tmp_path / "canary"
    answer = PAYLOADS[payload].format(canary=canary)
    result = generate(tmp_path, f"{field}={answer}", "project_slug=my-service")
    time.sleep(0.1)
    assert not canary.exists()
    if result.returncode != 0:
        assert_refused(result, tmp_path, field)
        return
    project = tmp_path / "out" / "my-service"
    recorded = json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"][field]
    assert "{{" not in recorded and "{%" not in recorded
    lint_rendered(project)


@pytest.mark.parametrize(
    "slug", ["../escape", "/ABSOLUTE", ".", "..", "-x", "a/b", "x y", "my..service", "~root", ""]
)
def test_h2_unsafe_slug_creates_nothing_anywhere(tmp_path: Path, slug: str) -> None:
    if slug == "/ABSOLUTE":
        slug = str(tmp_path / "absolute" / "x")
    result = generate(tmp_path, f"project_slug={slug}")
    assert_refused(result, tmp_path, "project_slug")


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ("project_slug=café-service", "project_slug"),
        ("project_slug=my\u202eservice", "project_slug"),
        ("project_slug=m\u0443-service", "project_slug"),  # a Cyrillic u
        ("service_user=jöhn", "service_user"),
        ("description=left\u202eright", "description"),
        ("maintainer_name=Eve\u2066", "maintainer_name"),
    ],
)
def test_h3_non_ascii_and_bidi_names_are_refused_with_the_pattern(
    tmp_path: Path, answer: str, field: str
) -> None:
    result = generate(tmp_path, answer)
    assert_refused(result, tmp_path, field)
    if field in ("project_slug", "service_user"):
        assert "[a-z" in result.stderr or "lowercase ASCII" in result.stderr


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Café Service", "cafe-service"),
        ("Billing Exporter v2.0", "billing-exporter-v2-0"),
        ("Bob's Shop", "bob-s-shop"),
    ],
)
def test_h3_names_become_ascii_slugs(tmp_path: Path, name: str, slug: str) -> None:
    result = generate(tmp_path, f"project_name={name}")
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "out") >= {slug, f"{slug}/init/sysv/{slug}"}
    assert f"Provides:          {slug}\n" in (tmp_path / "out" / slug / f"init/sysv/{slug}").read_text()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("service_user=root", "reserved system account"),
        ("service_user=nobody", "reserved system account"),
        ("service_user=daemon", "reserved system account"),
        ("service_user=" + "u" * 32, "at most 31"),
        ("project_slug=" + "s" * 32, "at most 31"),
    ],
)
def test_h4_reserved_and_impossible_names_are_refused(tmp_path: Path, answer: str, message: str) -> None:
    result = generate(tmp_path, answer)
    assert_refused(result, tmp_path, answer.split("=")[0])
    assert message in result.stderr


def test_h4_slug_longer_than_comm_is_matched_by_its_first_15_characters(tmp_path: Path) -> None:
    slug = "billing-exporter-eu"
    result = generate(tmp_path, f"project_slug={slug}", "init_system=sysv")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / slug
    assert f'PROCNAME="{slug[:15]}"\n' in (project / f"init/sysv/{slug}").read_text()
    # The name start-stop-daemon --name compares with is the kernel's comm of the launcher.
    destdir = tmp_path / "root"
    assert run(["make", "-C", str(project), "install", f"DESTDIR={destdir}", "prefix=/usr"]).returncode == 0
    config = tmp_path / "c.conf"
    config.write_text(f"[service]\nlisten = 127.0.0.1\nport = 0\nlog_file = {tmp_path / 'log'}\n")
    process = subprocess.Popen([str(destdir / f"usr/sbin/{slug}"), "--config", str(config)])
    try:
        deadline = time.monotonic() + 10
        while "ready" not in ((tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert Path(f"/proc/{process.pid}/comm").read_text().strip() == slug[:15]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_h6_failing_hook_leaves_an_existing_project_untouched(tmp_path: Path) -> None:
    existing = tmp_path / "out" / "my-service"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("mine\n")
    result = generate(tmp_path, "port=80", force=True)
    assert result.returncode == 1
    assert "ERROR: port '80'" in result.stderr
    assert tree(existing) == {"keep.txt"}
    assert (existing / "keep.txt").read_text() == "mine\n"


def test_h6_existing_output_directory_is_not_overwritten_without_asking(tmp_path: Path) -> None:
    existing = tmp_path / "out" / "my-service"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("mine\n")
    result = generate(tmp_path)
    assert result.returncode != 0
    assert "already exists" in result.stdout + result.stderr
    assert tree(existing) == {"keep.txt"}
