"""The package tier's builds and what the packages must hold (DESIGN.md, "Paths on the
target host")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support import render, run

# The default project, then one project per init-system choice. The latter use a
# service user that differs from the slug, so a hard-coded name cannot pass.
OTHER_NAMES = {"project_name": "Billing Exporter", "service_user": "billing"}
VARIANTS: dict[str, dict[str, str]] = {
    "all": {},
    **{init: {**OTHER_NAMES, "init_system": init} for init in ("sysv", "upstart", "systemd", "daemontools")},
}


@dataclass(frozen=True)
class Built:
    """A rendered project after `make deb rpm`."""

    variant: str
    project: Path
    slug: str
    package: str
    user: str
    init_system: str
    deb: Path
    rpm: Path
    log: str
    home: Path

    def has(self, init: str) -> bool:
        return self.init_system in ("all", init)

    def env(self, **extra: str) -> dict[str, str]:
        """rpm and rpmlint write into $HOME, lintian into $TMPDIR: keep both in the build."""
        tmp = self.home / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "HOME": str(self.home), "TMPDIR": str(tmp), **extra}


def make(project: Path, *targets: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """make in the project; stdout holds its output and that of the tools it ran."""
    command = ["make", "-C", str(project), *targets]
    return run(command, env=env, capture_output=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def build(project: Path, variant: str, home: Path) -> Built:
    result = make(project, "deb", "rpm", env={**os.environ, "HOME": str(home)})
    assert result.returncode == 0, result.stdout[-6000:]
    recorded = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    answers = recorded.get("cookiecutter", recorded)
    (deb,) = (project / "dist").glob("*.deb")
    (rpm,) = (project / "dist").glob("*.rpm")
    return Built(
        variant=variant,
        project=project,
        slug=answers["project_slug"],
        package=answers["package_name"],
        user=answers["service_user"],
        init_system=answers["init_system"],
        deb=deb,
        rpm=rpm,
        log=result.stdout,
        home=home,
    )


class Builds:
    """This worker's builds, one per variant, made on first use."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.done: dict[str, Built] = {}

    def __getitem__(self, variant: str) -> Built:
        if variant not in self.done:
            workdir = self.base / variant
            workdir.mkdir()
            project = render(workdir / "out", **VARIANTS[variant])
            self.done[variant] = build(project, variant, workdir / "home")
        return self.done[variant]


def copy_project(source: Built, dest: Path) -> Path:
    """A copy with the build's files and times, for a test that rebuilds."""
    target = dest / source.project.name
    shutil.copytree(source.project, target, symlinks=True)
    return target


def deb_entries(deb: Path) -> dict[str, tuple[str, str]]:
    """path -> (mode string, owner/group), from `dpkg-deb -c`."""
    listing = run(["dpkg-deb", "-c", str(deb)])
    assert listing.returncode == 0, listing.stderr
    entries = {}
    for line in listing.stdout.splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        path = path.split(" -> ")[0]
        entries["/" + path.lstrip("./").rstrip("/") if path != "./" else "/"] = (mode, owner)
    return entries


def rpm_entries(rpm: Path, env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """path -> (mode string, owner/group), from `rpm -qp --qf`."""
    fmt = "[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILENAMES}\n]"
    query = run(["rpm", "-qp", "--qf", fmt, str(rpm)], env=env)
    assert query.returncode == 0, query.stderr
    entries = {}
    for line in query.stdout.splitlines():
        mode, owner, path = line.split(" ", 2)
        entries[path] = (mode, owner)
    return entries


FILE = "-rw-r--r--"
EXEC = "-rwxr-xr-x"
ROOT = "root/root"


def python_sources(built: Built) -> list[str]:
    return sorted(path.name for path in (built.project / "src" / built.package).glob("*.py"))


def shared_files(built: Built, codedir: str, unitdir: str) -> dict[str, str]:
    """path -> mode of the files that `make install` puts in both packages."""
    slug = built.slug
    files = {
        f"/usr/sbin/{slug}": EXEC,
        f"/etc/{slug}/{slug}.conf": FILE,
        f"/etc/default/{slug}": FILE,
        f"/etc/logrotate.d/{slug}": FILE,
        f"/usr/share/man/man8/{slug}.8.gz": FILE,
    }
    files.update({f"{codedir}/{built.package}/{name}": FILE for name in python_sources(built)})
    if built.has("sysv"):
        files[f"/etc/init.d/{slug}"] = EXEC
    if built.has("upstart"):
        files[f"/etc/init/{slug}.conf"] = FILE
    if built.has("systemd"):
        files[f"{unitdir}/{slug}.service"] = FILE
        files[f"{unitdir}/{slug}.socket"] = FILE
        files[f"/usr/lib/systemd/system-generators/{slug}-generator"] = EXEC
    if built.has("daemontools"):
        files[f"/etc/sv/{slug}/run"] = EXEC
    return files


def deb_files(built: Built) -> dict[str, str]:
    slug = built.slug
    files = shared_files(built, f"/usr/lib/{slug}", "/lib/systemd/system")
    files.update(
        {
            f"/usr/share/doc/{slug}/copyright": FILE,
            f"/usr/share/doc/{slug}/changelog.gz": FILE,
            # dh_python3: byte-compiles /usr/lib/<slug> again when python3 changes version.
            f"/usr/share/python3/runtime.d/{slug}.rtupdate": EXEC,
        }
    )
    if built.init_system in ("all", "upstart", "sysv"):
        files[f"/usr/share/lintian/overrides/{slug}"] = FILE
    return files


def rpm_files(built: Built) -> dict[str, str]:
    return shared_files(built, f"/usr/share/{built.slug}", "/usr/lib/systemd/system")


def etc_files(files: dict[str, str]) -> set[str]:
    return {path for path in files if path.startswith("/etc/")}
