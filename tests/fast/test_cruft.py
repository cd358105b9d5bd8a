"""Updates from the template (issue 11, item 5; no row of RELIABILITY.md): the project
records its template in cruft's format, so `cruft check` and `cruft update` follow it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from support import TEMPLATE, run

SLUG_DIR = "{{cookiecutter.project_slug}}"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> str:
    result = run(["git", "-C", str(repo), *args], env={**os.environ, **GIT_ENV})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def cruft(generated: Path, *args: str):  # type: ignore[no-untyped-def]
    return run([sys.executable, "-m", "cruft", *args], cwd=generated, env={**os.environ, **GIT_ENV})


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A git repository made from a copy of the template, at its commit A."""
    repo = tmp_path / "template"
    repo.mkdir()
    for name in ("cookiecutter.json", "local_extensions.py"):
        shutil.copy2(TEMPLATE / name, repo / name)
    for name in ("hooks", SLUG_DIR):
        shutil.copytree(TEMPLATE / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q")
    commit_all(repo, "A")
    return repo


@pytest.fixture
def generated(template: Path, tmp_path: Path) -> Path:
    """The project rendered from commit A and committed, as a user starts."""
    from cookiecutter.main import cookiecutter

    path = Path(cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / "out")))
    git(path, "init", "-q")
    commit_all(path, "generated")
    return path


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")


def replace_line(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_cruft_json_records_template_and_commit_for_check_and_diff(template: Path, generated: Path) -> None:
    state = json.loads((generated / ".cruft.json").read_text(encoding="utf-8"))
    assert state["template"] == str(template.resolve())
    assert state["commit"] == git(template, "rev-parse", "HEAD")
    assert state["context"]["cookiecutter"]["project_slug"] == generated.name
    result = cruft(generated, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    diff = cruft(generated, "diff", "--exit-code")
    assert (diff.returncode, diff.stdout) == (0, ""), diff.stderr
    append(generated / "README.md", "A note of the user's own.")
    diff = cruft(generated, "diff", "--exit-code")
    assert diff.returncode == 1, diff.stderr
    assert "upstream-template-new/README.md" in diff.stdout and "-A note of the user's own." in diff.stdout


def test_cruft_update_brings_template_change_and_keeps_user_edit(template: Path, generated: Path) -> None:
    append(generated / "README.md", "A note of the user's own.")
    commit_all(generated, "user edit")
    append(template / SLUG_DIR / "docs" / "packaging.md", "A paragraph the template added in B.")
    commit_b = commit_all(template, "B")

    check = cruft(generated, "check")
    assert check.returncode == 1, check.stdout + check.stderr
    update = cruft(generated, "update", "-y")
    assert update.returncode == 0, update.stdout + update.stderr

    assert (
        (generated / "docs" / "packaging.md")
        .read_text(encoding="utf-8")
        .endswith("A paragraph the template added in B.\n")
    )
    assert (generated / "README.md").read_text(encoding="utf-8").endswith("A note of the user's own.\n")
    assert json.loads((generated / ".cruft.json").read_text(encoding="utf-8"))["commit"] == commit_b
    assert list(generated.rglob("*.rej")) == []
    check = cruft(generated, "check")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("in_git", [True, False], ids=["git", "no-git"])
def test_cruft_conflicting_edit_is_marked_as_the_readme_explains(
    template: Path, generated: Path, in_git: bool
) -> None:
    """cruft merges three ways in a git repository (conflict markers), else leaves a .rej file."""
    conf = generated / "conf" / f"{generated.name}.conf"
    replace_line(conf, "message = ok", "message = the user's")
    if in_git:
        commit_all(generated, "user edit")
    else:
        shutil.rmtree(generated / ".git")
    replace_line(template / SLUG_DIR / "conf" / (SLUG_DIR + ".conf"), "message = ok", "message = B's")
    commit_all(template, "B")

    cruft(generated, "update", "-y")

    rejects = sorted(p.relative_to(generated).as_posix() for p in generated.rglob("*.rej"))
    text = conf.read_text(encoding="utf-8")
    if in_git:
        assert rejects == []
        assert (
            git(generated, "diff", "--name-only", "--diff-filter=U") == conf.relative_to(generated).as_posix()
        )
        assert "<<<<<<< ours\nmessage = the user's\n=======\nmessage = B's\n>>>>>>> theirs\n" in text
    else:
        assert rejects == [conf.relative_to(generated).as_posix() + ".rej"]
        assert "message = the user's\n" in text
        assert "message = B's" in (generated / rejects[0]).read_text(encoding="utf-8")
    readme = (generated / "README.md").read_text(encoding="utf-8")
    assert ".rej" in readme and "<<<<<<<" in readme and "cruft update" in readme
