"""The .rpm of every variant: contents, %config files, scriptlets, requires, rpmlint,
and the same installed files as the .deb."""

from __future__ import annotations

import filecmp
import os
import re
import stat
from pathlib import Path

from pkgbuild import FILE, ROOT, Built, make, rpm_entries, rpm_files
from support import require_tool, run

PRIVATE_DIR = "drwxr-x---"
SCRIPTLETS = ("PREIN", "POSTIN", "PREUN", "POSTUN")


def query(built: Built, *args: str) -> str:
    result = run(["rpm", "-qp", *args, str(built.rpm)], env=built.env())
    assert result.returncode == 0, result.stderr
    return result.stdout


def scriptlet(built: Built, tag: str) -> str:
    text = query(built, "--qf", f"%{{{tag}}}")
    return "" if text == "(none)" else text


def test_rpm_holds_the_designed_files_with_their_modes_and_owners(built: Built) -> None:
    entries = rpm_entries(built.rpm, built.env())
    licenses = [path for path in entries if path.startswith("/usr/share/licenses/")]
    assert [Path(path).name for path in licenses if not entries[path][0].startswith("d")] == ["copyright"]
    files = {
        path: mode for path, (mode, _) in entries.items() if not mode.startswith("d") and path not in licenses
    }
    assert files == rpm_files(built)
    assert {owner for path, (mode, owner) in entries.items() if not path.startswith("/var/")} == {ROOT}


def test_rpm_owns_the_private_state_and_log_directories(built: Built, tmp_path: Path) -> None:
    """The spec's %{statedir} and %{logdir} are the dirs of `make build`'s prepare-dirs."""
    entries = rpm_entries(built.rpm, built.env())
    helper = installed(built, tmp_path) / f"usr/libexec/{built.slug}/prepare-dirs"
    dirs = re.findall(r"^(?:STATEDIR|LOGDIR)=(/\S+)$", helper.read_text(), re.M)
    assert dirs == [f"/var/lib/{built.slug}", f"/var/log/{built.slug}"]
    owner = f"{built.user}/{built.user}"
    assert entries[f"/var/lib/{built.slug}"] == (PRIVATE_DIR, owner)
    assert entries[f"/var/log/{built.slug}"] == (PRIVATE_DIR, owner)
    assert [path for path in entries if path.startswith(("/var", "/run"))] == [
        f"/var/lib/{built.slug}",
        f"/var/log/{built.slug}",
    ]


def test_etc_files_are_config_noreplace_except_executables(built: Built) -> None:
    listing = query(built, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")
    flags = {path: flag for flag, path in (line.split(" ", 1) for line in listing.splitlines())}
    files = rpm_files(built)
    etc = sorted(path for path in files if path.startswith("/etc/"))
    assert etc
    for path in etc:
        assert flags[path] == ("cn" if files[path] == FILE else ""), path


def test_pre_creates_the_system_user_and_group(built: Built) -> None:
    pre = scriptlet(built, "PREIN")
    assert f"getent group {built.user} >/dev/null || groupadd -r {built.user}" in pre
    assert f"useradd -r -g {built.user} -d /var/lib/{built.slug} -s /sbin/nologin" in pre


def test_post_runs_the_packages_prepare_dirs_first(built: Built) -> None:
    commands = [line for line in scriptlet(built, "POSTIN").splitlines() if not line.startswith("#")]
    assert commands[0] == f"/usr/libexec/{built.slug}/prepare-dirs"


def test_systemd_scriptlets_preset_on_install_restart_on_upgrade_stop_on_erase(
    built: Built, tmp_path: Path
) -> None:
    post, preun, postun = (scriptlet(built, tag) for tag in SCRIPTLETS[1:])
    # What is left of %post once prepare-dirs has run (its own test covers that).
    post = post.partition(f"/usr/libexec/{built.slug}/prepare-dirs")[2].lstrip("\n")
    if not built.has("systemd"):
        assert (post, preun, postun) == ("", "", "")
        return
    unit, socket = f"{built.slug}.service", f"{built.slug}.socket"
    # $1 counts the installed instances: 1 on install, 2 on upgrade, 0 on erase. An upgrade
    # restarts the service alone: its socket stays open.
    assert systemctl_calls(post, "1", tmp_path) == [f"--no-reload preset {socket} {unit}"]
    assert systemctl_calls(post, "2", tmp_path) == []
    assert systemctl_calls(postun, "1", tmp_path) == ["daemon-reload", f"try-restart {unit}"]
    assert systemctl_calls(preun, "1", tmp_path) == []
    assert systemctl_calls(preun, "0", tmp_path) == [f"--no-reload disable --now {socket} {unit}"]
    assert systemctl_calls(postun, "0", tmp_path) == ["daemon-reload"]


def systemctl_calls(script: str, count: str, tmp_path: Path) -> list[str]:
    """Run a scriptlet as rpm does (sh -c, $1 = count) with a systemctl that only logs."""
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir(exist_ok=True)
    log = tmp_path / "systemctl.log"
    log.write_text("")
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = run(["sh", "-ec", script, "scriptlet", count], env=env)
    assert result.returncode == 0, result.stderr
    return log.read_text().splitlines()


def test_scriptlets_pass_shellcheck(built: Built, tmp_path: Path) -> None:
    require_tool("shellcheck")
    scripts = []
    for tag in SCRIPTLETS:
        text = scriptlet(built, tag)
        if text:
            path = tmp_path / tag
            path.write_text("#!/bin/sh\n" + text + "\n")
            scripts.append(str(path))
    assert scripts
    result = run(["shellcheck", "-s", "sh", *scripts])
    assert result.returncode == 0, result.stdout


def test_rpm_requires_python3_logrotate_and_shadow_utils(built: Built) -> None:
    requires = {line for line in query(built, "--requires").splitlines() if not line.startswith("rpmlib(")}
    assert requires == {
        "/bin/sh",
        "/usr/bin/python3",
        f"config({built.slug}) = 0.1.0-1",
        "logrotate",
        "python3",
        "shadow-utils",
    }
    assert query(built, "--qf", "%{ARCH}") == "noarch"


def test_rpm_version_changelog_and_packager_come_from_debian_changelog(built: Built) -> None:
    assert query(built, "--qf", "%{VERSION}-%{RELEASE}") == "0.1.0-1"
    assert query(built, "--qf", "%{PACKAGER}") == "Platform Team <platform@example.com>"
    changelog = query(built, "--changelog")
    assert re.match(
        r"\* \w{3} \w{3} \d\d \d{4} Platform Team <platform@example.com> - 0\.1\.0-1\n- ", changelog
    )


def test_rpmlint_passes_with_no_error_and_no_warning(built: Built) -> None:
    require_tool("rpmlint")
    result = make(built.project, "lint-rpm", env=built.env())
    print(result.stdout)
    assert result.returncode == 0, result.stdout
    assert "0 errors, 0 warnings" in result.stdout


def test_rpm_ships_the_manual_page_that_rpmlint_24_cannot_see(built: Built) -> None:
    # Backs the no-manual-page-for-binary filter of the rpmlintrc.
    assert f"/usr/share/man/man8/{built.slug}.8.gz" in rpm_entries(built.rpm, built.env())


def installed(built: Built, tmp_path: Path) -> Path:
    """The .rpm's files, installed into an empty root without its scriptlets."""
    rpmroot = tmp_path / "rpmroot"
    rpmroot.mkdir()
    install = run(
        ["rpm", "--root", str(rpmroot), "-i", "--nodeps", "--noscripts", str(built.rpm)], env=built.env()
    )
    assert install.returncode == 0, install.stderr
    return rpmroot


def test_rpm_installs_the_same_files_as_the_deb(built: Built, tmp_path: Path) -> None:
    rpmroot, debroot = installed(built, tmp_path), tmp_path / "debroot"
    assert run(["dpkg-deb", "-x", str(built.deb), str(debroot)]).returncode == 0

    # Each distribution's own places: where Fedora puts noarch code and units, the
    # files dpkg and rpm keep about packages, and the documentation of each.
    def deb_to_rpm(path: str) -> str:
        path = re.sub(r"^/lib/systemd/", "/usr/lib/systemd/", path)
        return re.sub(rf"^/usr/lib/{re.escape(built.slug)}/", f"/usr/share/{built.slug}/", path)

    deb_only = ("/usr/share/doc/", "/usr/share/lintian/", "/usr/share/python3/runtime.d/")
    rpm_only = ("/usr/share/licenses/",)
    debfiles = {deb_to_rpm(path): path for path in walk(debroot) if not path.startswith(deb_only)}
    rpmfiles = {
        path
        for path in walk(rpmroot)
        if path.startswith(("/etc/", "/usr/")) and not path.startswith(rpm_only)
    }
    assert sorted(rpmfiles) == sorted(debfiles)
    for path, debpath in debfiles.items():
        rpmfile, debfile = rpmroot / path.lstrip("/"), debroot / debpath.lstrip("/")
        assert stat.S_IMODE(rpmfile.stat().st_mode) == stat.S_IMODE(debfile.stat().st_mode), path
        if path.startswith("/etc/") or path.endswith(".service"):
            assert filecmp.cmp(rpmfile, debfile, shallow=False), path


def walk(root: Path) -> list[str]:
    return sorted(
        "/" + os.path.relpath(os.path.join(directory, name), root)
        for directory, _, names in os.walk(root)
        for name in names
    )
