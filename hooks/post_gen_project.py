"""Remove what the answers did not select, set file modes, record the answers and the
template's source and commit.

Runs in the generated project's directory. A flat table: one small function per
choice, so that what each answer removes is visible at a glance.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from cookiecutter.config import BUILTIN_ABBREVIATIONS
from cookiecutter.repository import expand_abbreviations, is_repo_url

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
NAME = ANSWERS["project_slug"]
# Answers worth keeping to render the project again; cookiecutter's private keys
# (output dir, extensions) say nothing about the project.
RECORDED = [key for key in ANSWERS if not key.startswith("_")] + ["_template"]
EXECUTABLE = [
    "bin/" + NAME,
    "lib/prepare-dirs",
    "init/sysv/" + NAME,
    "init/daemontools/run",
    "init/systemd/" + NAME + "-generator",
    "deploy/check-health",
    "tests/smoke",
    "debian/rules",
    ".ci/install-tools",
]


def remove(*paths: str) -> None:
    for path in map(Path, paths):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def remove_sysv() -> None:
    remove("init/sysv", "tests/bats/init_script.bats")


def remove_upstart() -> None:
    remove("init/upstart")


def remove_systemd() -> None:
    remove("init/systemd", "tests/smoke")


def remove_daemontools() -> None:
    remove("init/daemontools")


def remove_supervisord() -> None:
    remove("init/supervisor")


def remove_overrides() -> None:
    """Only the Upstart job and a SysV-only package need a lintian override."""
    remove(f"debian/{NAME}.lintian-overrides")


REMOVALS = {
    "all": [],
    "sysv": [remove_upstart, remove_systemd, remove_daemontools, remove_supervisord],
    "upstart": [remove_sysv, remove_systemd, remove_daemontools, remove_supervisord],
    "systemd": [remove_sysv, remove_upstart, remove_daemontools, remove_supervisord, remove_overrides],
    "daemontools": [remove_sysv, remove_upstart, remove_systemd, remove_supervisord, remove_overrides],
    "supervisord": [remove_sysv, remove_upstart, remove_systemd, remove_daemontools, remove_overrides],
}


def set_modes() -> None:
    for path in map(Path, EXECUTABLE):
        if path.exists():
            path.chmod(0o755)


def record_answers() -> None:
    """In cookiecutter's replay format: `cookiecutter --replay-file .cookiecutter.json`."""
    record = {"cookiecutter": {key: ANSWERS[key] for key in RECORDED if key in ANSWERS}}
    Path(".cookiecutter.json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def template_commit(repo_dir: str) -> str | None:
    """The commit of the template's git checkout, or None for a plain directory."""
    try:
        result = subprocess.run(
            ["git", "-C", repo_dir, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        )
    except OSError:  # no git on this machine: a plain directory, as far as we can tell
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def record_template() -> None:
    """.cruft.json, in cruft's format, so that `cruft check`, `cruft diff` and `cruft update`
    work. cruft's own renders carry `_commit`: cruft writes that file itself then."""
    if "_commit" in ANSWERS or "_repo_dir" not in ANSWERS:
        return
    commit = template_commit(ANSWERS["_repo_dir"])
    if commit is None:
        print(
            "The template is not a git checkout: no .cruft.json was written; "
            "`cruft link TEMPLATE-URL` writes one.",
            file=sys.stderr,
        )
        return
    source = expand_abbreviations(ANSWERS["_template"], BUILTIN_ABBREVIATIONS)
    if not is_repo_url(source):
        source = str(Path(ANSWERS["_repo_dir"]).resolve())
    context = {key: ANSWERS[key] for key in RECORDED if key in ANSWERS}
    state = {
        "template": source,
        "commit": commit,
        "checkout": ANSWERS.get("_checkout"),
        "context": {"cookiecutter": {**context, "_template": source, "_commit": commit}},
        "directory": None,
        # The project's own history from its first render on: an update never patches it.
        "skip": ["debian/changelog"],
    }
    Path(".cruft.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    for removal in REMOVALS[ANSWERS["init_system"]]:
        removal()
    set_modes()
    record_answers()
    record_template()


if __name__ == "__main__":
    main()
