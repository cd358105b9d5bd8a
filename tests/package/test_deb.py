"""The .deb of every variant: contents, conffiles, control fields, maintainer scripts, lintian."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pkgbuild import ROOT, Built, deb_entries, deb_files, etc_files, make
from support import init_project_files, require_tool, run

# What debhelper's snippets run to enable, start or restart, and stop the service.
DEBHELPER_ENABLE = {
    "systemd": "deb-systemd-helper enable '{slug}.service'",
    "sysv": "update-rc.d {slug} defaults",
}
DEBHELPER_START = {
    "systemd": "deb-systemd-invoke $_dh_action '{slug}.service'",
    "sysv": "invoke-rc.d --skip-systemd-native {slug} $_dh_action",
}
DEBHELPER_STOP = {
    "systemd": "deb-systemd-invoke stop '{slug}.service'",
    "sysv": "invoke-rc.d --skip-systemd-native {slug} stop",
}
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
# Informational tags that lintian --pedantic --display-info shows, and why they stay.
EXPECTED_INFO = {
    # A unit, or a run script, without an LSB init script: the init choice of the project.
    "systemd": {"package-supports-alternative-init-but-no-init.d-script"},
    "daemontools": {"package-supports-alternative-init-but-no-init.d-script"},
}


def control_scripts(built: Built, tmp_path: Path) -> Path:
    out = tmp_path / "control"
    result = run(["dpkg-deb", "--control", str(built.deb), str(out)])
    assert result.returncode == 0, result.stderr
    return out


def field(built: Built, name: str) -> str:
    result = run(["dpkg-deb", "--field", str(built.deb), name])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_deb_holds_the_designed_files_with_their_modes_and_owners(built: Built) -> None:
    entries = deb_entries(built.deb)
    files = {path: mode for path, (mode, _) in entries.items() if not mode.startswith("d")}
    assert files == deb_files(built)
    assert {owner for _, owner in entries.values()} == {ROOT}
    directories = {mode for mode, _ in entries.values() if mode.startswith("d")}
    assert directories == {"drwxr-xr-x"}


def test_deb_ships_nothing_under_var_run_or_tmp(built: Built) -> None:
    shipped = [path for path in deb_entries(built.deb) if path.startswith(("/var", "/run", "/tmp"))]
    assert shipped == []


def rules_unitdirs(project: Path, env: dict[str, str]) -> set[str]:
    """The unitdir that debian/rules gives `make build` and `make install`, as `make -n` shows."""
    targets = ["override_dh_auto_build", "override_dh_auto_install"]
    result = run(["make", "-n", "-f", "debian/rules", *targets], cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    return set(re.findall(r" unitdir=(\S+)", result.stdout))


def test_units_go_where_the_build_hosts_systemd_pc_says(default: Built, tmp_path: Path) -> None:
    """Debian 12's systemd.pc says /lib/systemd/system: this host's, and the .deb's file list. 13's
    says /usr/lib/systemd/system, for merged /usr: a systemd.pc of its own stands in for such a host."""
    require_tool("pkg-config")
    host = run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"])
    assert host.returncode == 0, host.stderr
    assert rules_unitdirs(default.project, dict(os.environ)) == {host.stdout.strip()}
    assert f"{host.stdout.strip()}/{default.slug}.service" in deb_entries(default.deb)
    merged = tmp_path / "pkgconfig"
    merged.mkdir()
    (merged / "systemd.pc").write_text(
        "prefix=/usr\nsystemdsystemunitdir=${prefix}/lib/systemd/system\n\n"
        "Name: systemd\nDescription: systemd\nVersion: 257\n"
    )
    env = {**os.environ, "PKG_CONFIG_LIBDIR": str(merged)}
    assert rules_unitdirs(default.project, env) == {"/usr/lib/systemd/system"}
    # Without a systemd.pc the build stops, naming what is missing, before installing anything.
    (merged / "systemd.pc").unlink()
    rules = ["make", "-n", "-f", "debian/rules", "override_dh_auto_install"]
    missing = run(rules, cwd=default.project, env=env)
    assert missing.returncode != 0 and "finds no systemd.pc" in missing.stderr, missing.stderr
    assert "unitdir=" not in missing.stdout


def test_every_file_under_etc_is_a_conffile(built: Built, tmp_path: Path) -> None:
    conffiles = (control_scripts(built, tmp_path) / "conffiles").read_text().split()
    assert sorted(conffiles) == sorted(etc_files(deb_files(built)))


def test_deb_is_architecture_all_and_depends_only_on_python3_and_adduser(built: Built) -> None:
    assert field(built, "Architecture") == "all"
    assert sorted(re.split(r",\s*", field(built, "Depends"))) == ["adduser", "python3:any"]
    assert field(built, "Package") == built.slug
    # A native package: no Debian revision.
    assert field(built, "Version") == "0.1.0"


def test_pre_depends_come_from_debhelper_for_the_init_script_snippets(built: Built) -> None:
    # dh_installinit's snippets need a recent init-system-helpers (update-rc.d,
    # invoke-rc.d); dh_installsystemd's tools are in essential packages.
    pre_depends = field(built, "Pre-Depends")
    if built.has("sysv"):
        assert pre_depends.startswith("init-system-helpers (>= ")
    else:
        assert pre_depends == ""


def helper_dirs(built: Built, tmp_path: Path) -> dict[str, str]:
    """STATEDIR and LOGDIR of the prepare-dirs in the .deb: the paths of `make build`."""
    root = tmp_path / "files"
    assert run(["dpkg-deb", "-x", str(built.deb), str(root)]).returncode == 0
    text = (root / f"usr/libexec/{built.slug}/prepare-dirs").read_text()
    return dict(re.findall(r"^(STATEDIR|LOGDIR)=(/\S+)$", text, re.M))


def test_postinst_creates_the_system_user_then_runs_debhelpers_part(built: Built, tmp_path: Path) -> None:
    """What the postinst does on a host that is not fresh is the system tier's (P8, H7)."""
    postinst = (control_scripts(built, tmp_path) / "postinst").read_text()
    assert f'\nNAME="{built.slug}"\nSERVICE_USER="{built.user}"\n' in postinst
    statedir = helper_dirs(built, tmp_path)["STATEDIR"]
    assert f'\nSTATEDIR="{statedir}"\nPREPARE_DIRS="/usr/libexec/{built.slug}/prepare-dirs"\n' in postinst
    adduser = 'adduser --system --ingroup "$SERVICE_USER" --quiet --home "$STATEDIR" --no-create-home'
    prepare = '"$PREPARE_DIRS" || refuse'
    assert "install -d" not in postinst
    assert "#DEBHELPER#" not in postinst
    debhelpers = postinst.index("# Automatically added by dh_python3")
    assert postinst.index(adduser) < postinst.index(prepare) < debhelpers


def test_maintainer_scripts_have_every_token_of_debian_rules_replaced(built: Built, tmp_path: Path) -> None:
    scripts = control_scripts(built, tmp_path)
    for path in scripts.iterdir():
        if path.name in MAINTAINER_SCRIPTS:
            assert re.findall(r"#[A-Za-z0-9_.+]+#", path.read_text()) == [], path.name


@pytest.mark.parametrize("init", ["systemd", "sysv"])
def test_service_is_started_on_install_restarted_on_upgrade_stopped_on_remove(
    built: Built, tmp_path: Path, init: str
) -> None:
    scripts = control_scripts(built, tmp_path)
    postinst, prerm = (scripts / "postinst").read_text(), (scripts / "prerm").read_text()
    commands = (DEBHELPER_ENABLE, DEBHELPER_START, DEBHELPER_STOP)
    enable, start, stop = (command[init].format(slug=built.slug) for command in commands)
    if not built.has(init):
        assert enable not in postinst and start not in postinst and stop not in prerm
        return
    assert enable in postinst
    # On a first install $2 is empty: start; on an upgrade it is the old version: restart.
    choice = r'if \[ -n "\$2" \]; then\s+_dh_action=restart\s+else\s+_dh_action=start\s+fi\s+'
    assert re.search(choice + re.escape(start), postinst), postinst
    assert stop in prerm


def test_socket_is_enabled_and_started_but_never_stopped_or_restarted_by_an_upgrade(
    built: Built, tmp_path: Path
) -> None:
    scripts = control_scripts(built, tmp_path)
    postinst, prerm = (scripts / "postinst").read_text(), (scripts / "prerm").read_text()
    preinst = (scripts / "preinst").read_text() if (scripts / "preinst").exists() else ""
    socket = f"'{built.slug}.socket'"
    if not built.has("systemd"):
        assert socket not in postinst + prerm + preinst
        return
    assert f"deb-systemd-helper enable {socket}" in postinst
    # Started when not running (a no-op when it is): only the service restarts on upgrade.
    actions = {action for action, units in re.findall(r"deb-systemd-invoke (\S+) (.*) >/dev/null", postinst)
               if socket in units}  # fmt: skip
    assert actions == {"start"}, postinst
    assert socket not in preinst
    # Stopped on remove only.
    assert re.search(r'\[ "\$1" = remove \].*\n\s*deb-systemd-invoke stop ' + re.escape(socket), prerm), prerm


def test_postrm_purge_removes_state_logs_and_runtime_directory(built: Built, tmp_path: Path) -> None:
    postrm = (control_scripts(built, tmp_path) / "postrm").read_text()
    purge = postrm[postrm.index('if [ "$1" = purge ]; then') : postrm.index("fi\n")]
    slug = built.slug
    dirs = helper_dirs(built, tmp_path)
    paths = f'STATEDIR="{dirs["STATEDIR"]}"\nLOGDIR="{dirs["LOGDIR"]}"\nRUNDIR="/run/{slug}"\n'
    assert paths in postrm
    assert 'rm -rf "$STATEDIR" "$LOGDIR" "$RUNDIR"' in purge
    assert f'SVDIR="/etc/sv/{slug}"\n' in postrm
    assert 'rm -rf "$SVDIR/supervise"' in purge
    assert "deluser" not in postrm


def test_maintainer_scripts_pass_shellcheck(built: Built, tmp_path: Path) -> None:
    require_tool("shellcheck")
    scripts = control_scripts(built, tmp_path)
    found = sorted(path for path in scripts.iterdir() if path.name in MAINTAINER_SCRIPTS)
    assert {path.name for path in found} >= {"postinst", "prerm", "postrm"}
    result = run(["shellcheck", "-s", "sh", *map(str, found)])
    assert result.returncode == 0, result.stdout


def test_lintian_passes_with_pedantic_and_info_tags_shown(built: Built) -> None:
    require_tool("lintian")
    result = make(built.project, "lint-deb", env=built.env())
    print(result.stdout)
    assert result.returncode == 0, result.stdout
    tags = re.findall(r"^([EWIPXNO]): \S+: (\S+)", result.stdout, re.M)
    assert [tag for level, tag in tags if level in "EW"] == []
    assert {tag for level, tag in tags if level not in "EW"} == EXPECTED_INFO.get(built.variant, set())


def test_each_lintian_override_says_why(built: Built) -> None:
    name = f"debian/{built.slug}.lintian-overrides"
    overrides = built.project / name
    if name not in init_project_files(built.init_system, built.slug):
        assert not overrides.exists()
        return
    lines = overrides.read_text().splitlines()
    tags = [index for index, line in enumerate(lines) if line and not line.startswith("#")]
    assert tags
    for index in tags:
        assert index > 0 and lines[index - 1].startswith("# "), lines[index]


def test_make_deb_writes_into_dist_and_not_into_the_parent_directory(built: Built) -> None:
    assert sorted(path.name for path in built.project.parent.iterdir()) == [built.project.name]
    names = sorted(path.name for path in (built.project / "dist").iterdir())
    assert [name for name in names if not name.endswith(".rpm")] == [
        f"{built.slug}_0.1.0_all.deb",
        f"{built.slug}_0.1.0_{run(['dpkg', '--print-architecture']).stdout.strip()}.buildinfo",
        f"{built.slug}_0.1.0_{run(['dpkg', '--print-architecture']).stdout.strip()}.changes",
    ]
