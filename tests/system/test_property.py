"""H5 (RELIABILITY.md), a property test: any answers the hooks accept give a project whose own
`make lint` passes (shellcheck, dash -n and checkbashisms on every shell script, ruff), whose .deb's
maintainer scripts pass shellcheck and dash -n, whose systemd unit verifies without a warning, and
whose .deb passes lintian; rendering and building it runs none of the text and writes
only in the output directory.

Hypothesis draws the free text (project name, description, maintainer) from words, unicode, the
shell, roff, RPM-macro and quoting characters that validation lets through (% \\ $ " < > ` among
them, H8), well-known awkward values and inert `; touch CANARY` or `$(touch CANARY)` payloads, the
names (slug, service user) from the hook's patterns, and the address and version from samples
with international addresses and ~ or + versions. The hook's
own validate() keeps only the answers it accepts. The tier runs PROPERTY_EXAMPLES examples (15 by
default, the same ones every run); set it higher for a longer, freshly random run.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import tempfile
from pathlib import Path

import pre_gen_project as hook
import pytest
from hypothesis import configuration, example, given, settings
from hypothesis import strategies as st
from pkgbuild import make
from support import PACKAGE_PATHS, TEMPLATE, render, require_tool, run

# Hypothesis caches local constants and its Unicode table under ./.hypothesis, which would be the
# repository: keep them in the temporary directory, unless the caller chose a place.
if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
    configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "platform-skel-hypothesis")


TOOLS = (
    "make",
    "dash",
    "shellcheck",
    "checkbashisms",
    "ruff",
    "systemd-analyze",
    "dpkg-buildpackage",
    "dh",
    "dpkg-deb",
    "lintian",
)
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")

DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))

# Created by anything that runs a payload; short, so that a payload fits in every field.
CANARY = Path("/tmp") / f"h5-canary-{os.getpid()}"
PAYLOADS = [
    f"; touch {CANARY}",
    f"&& touch {CANARY}",
    f"|touch {CANARY}",
    f"' ; touch {CANARY} #",
    f"(touch {CANARY})",
    f"!touch {CANARY}",
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f'"; touch {CANARY}; "',
    f"%(touch {CANARY})",
]
# What people type, and what some tool treats specially (roff requests, RFC 5322 specials,
# lintian's reserved names and one-word synopses).
AWKWARD = [
    "Smith, John",
    "ACME Inc. (Platform)",
    "O'Neil & Sons",
    "José Müller-Lüdenscheidt",
    "王小明",
    "Ωmega ∑ monitor",
    "it\u2019s \u2013 done",
    ".profile",
    "'quoted'",
    "root",
    "Debian QA Group",
    "...",
    "A",
    "The",
    "missing",
]
# Shell, roff, RPM-macro and quoting characters that validation lets through in free text.
METACHARACTERS = ";'&|*?()#!~,.:[]@^=+-_/%\\$\"<>`"
LOWER = string.ascii_lowercase
EMAILS = ["platform@example.com", "zoë@exämple.de", "用户@例子.广告", "o'neil+ops@example.co.uk"]
VERSIONS = ["0.1.0", "1.0~rc1", "2.0+really1.9", "10.2.3.4"]

fragments = st.one_of(
    st.text(string.ascii_letters + string.digits, min_size=1, max_size=10),
    st.text(METACHARACTERS, min_size=1, max_size=3),
    # Every category the hooks take (they refuse Cc, Cf, Zl, Zp, Co, Cs and Cn).
    st.text(st.characters(exclude_categories=sorted(hook.TEXT_FORBIDDEN_CATEGORIES)), min_size=1, max_size=3),
    st.sampled_from(PAYLOADS),
    st.sampled_from(AWKWARD),
)
plain_names = st.lists(
    st.text(LOWER, min_size=1, max_size=8).map(str.capitalize), min_size=1, max_size=3
).map(" ".join)


@st.composite
def free_text(draw: st.DrawFn, max_len: int) -> str:
    parts = draw(st.lists(fragments, min_size=1, max_size=5))
    joined = "".join(part + draw(st.sampled_from([" ", ""])) for part in parts)
    return joined[:max_len].strip()


@st.composite
def slugs(draw: st.DrawFn) -> str:
    size = draw(st.integers(2, hook.SLUG_MAX))
    inner = draw(st.text(LOWER + string.digits + "-", min_size=size - 2, max_size=size - 2))
    return draw(st.sampled_from(LOWER)) + inner + draw(st.sampled_from(LOWER + string.digits))


@st.composite
def users(draw: st.DrawFn) -> str:
    size = draw(st.integers(1, hook.USER_MAX))
    rest = draw(st.text(LOWER + string.digits + "_-", min_size=size - 1, max_size=size - 1))
    return draw(st.sampled_from(LOWER + "_")) + rest


def derived_slug(project_name: str) -> str:
    """project_slug's default, as cookiecutter.json derives it."""
    return project_name.lower().strip().replace(" ", "-").replace("_", "-")


def as_rendered(answers: dict[str, str]) -> dict[str, str]:
    """Every answer as the hooks see it: the given ones, the rest derived or defaulted."""
    slug = answers.get("project_slug", derived_slug(answers["project_name"]))
    defaults = {key: DEFAULTS[key] for key in ("maintainer_email", "version", "port")}
    derived = {"project_slug": slug, "package_name": slug.replace("-", "_"), "service_user": slug}
    return {**defaults, **derived, **answers}


@st.composite
def answers(draw: st.DrawFn) -> dict[str, str]:
    name = draw(st.one_of(plain_names, free_text(64)))
    # Mostly two words or more, as Debian's synopsis needs; sometimes after the project's name.
    first = draw(st.one_of(st.just(name), free_text(40)))
    description = f"{first} {draw(free_text(80))}"[:80].strip()
    drawn = {
        "project_name": name,
        "description": description,
        "maintainer_name": draw(st.one_of(plain_names, free_text(64))),
        "maintainer_email": draw(st.sampled_from(EMAILS)),
        "version": draw(st.sampled_from(VERSIONS)),
        "init_system": "all",
    }
    # A name whose derived slug is not one comes with its own; a valid one sometimes does too.
    if hook.validate({"project_slug": derived_slug(name)}) or draw(st.booleans()):
        drawn["project_slug"] = draw(slugs())
    if draw(st.booleans()):
        drawn["service_user"] = draw(users())
    return drawn


accepted_answers = answers().filter(lambda drawn: not hook.validate(as_rendered(drawn)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool(*TOOLS)
    return tmp_path_factory.mktemp("h5")


def render_in(work: Path, drawn: dict[str, str]) -> Path:
    """Render into work/out, from the empty directory work/cwd."""
    (work / "cwd").mkdir()
    previous = Path.cwd()
    os.chdir(work / "cwd")
    try:
        return render(work / "out", **drawn)
    except SystemExit as refused:
        pytest.fail(f"the render refused answers that validate() accepts (exit {refused.code})")
    finally:
        os.chdir(previous)


def check_shell(project: Path, control: Path) -> None:
    """The project's own `make lint`, and the maintainer scripts as debhelper completed them."""
    result = make(project, "lint", *PACKAGE_PATHS)
    assert result.returncode == 0, result.stdout[-4000:]
    assert f" build/init/sysv/{project.name}" in result.stdout, "make lint checks the built init script"
    scripts = [str(path) for path in control.iterdir() if path.name in MAINTAINER_SCRIPTS]
    result = run(["shellcheck", "-x", "-s", "sh", *scripts])
    assert result.returncode == 0, result.stdout
    for name in scripts:
        result = run(["dash", "-n", name])
        assert result.returncode == 0, f"{name}: {result.stderr}"


def check_unit(root: Path, slug: str) -> None:
    # verify needs the unit's dependencies (sysinit.target, ...) inside the root.
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    # verify runs no generators: the socket's address, as its generator would write it (the
    # generator itself is tested in tests/fast/test_lint.py).
    drop_in = root / f"run/systemd/system/{slug}.socket.d/listen.conf"
    drop_in.parent.mkdir(parents=True)
    drop_in.write_text("[Socket]\nListenStream=127.0.0.1:8080\n")
    units = [f"/lib/systemd/system/{slug}.service", f"/lib/systemd/system/{slug}.socket"]
    result = run(["systemd-analyze", "verify", "--man=no", f"--root={root}", *units])
    assert (result.returncode, result.stderr) == (0, "")


def lintian_findings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("E: ", "W: "))]


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "8")),
    deadline=None,
    database=None,
    # The tier's bounded run tests the same examples every time, so that its result depends on
    # the change under test alone; a run that asks for its own number of examples explores afresh
    # (hypothesis prints the falsifying answers, ready for an @example).
    derandomize="PROPERTY_EXAMPLES" not in os.environ,
)
@given(drawn=accepted_answers)
# What it found: a slug that is a command's name (shellcheck SC2209 on NAME=bc), a maintainer's
# name with RFC 5322 specials (lintian malformed-contact) that starts like a roff request.
@example(
    drawn={
        "project_name": "Bc",
        "description": f"Counts things {PAYLOADS[0]}",
        "maintainer_name": ".Smith, John (ops)",
        "init_system": "all",
    }
)
# And free text that broke the project's own ruff: lines past 110 columns, "confusable" letters,
# a character outside the BMP that tojson wrote as surrogate escapes (invalid in pyproject.toml).
@example(
    drawn={
        "project_name": "Ünïcödé Sérvïcé with a rather long name for testing purposes ok",
        "project_slug": "unicode-service",
        "description": "Exports the figures \u2013 it\u2019s \u00d7 fast \U0001f600 past the usual width",
        "init_system": "all",
    }
)
# H8: every character the hooks once refused, in every free-text field, with a payload.
@example(
    drawn={
        "project_name": f'Bob\'s "fast" $(touch {CANARY}) 100%',
        "project_slug": "bobs-cache",
        "description": f"Keeps 100% uptime `touch {CANARY}` <b> C:\\x $HOME ~^",
        "maintainer_name": f'Zoë "Q" <ops> %name %% \\ `touch {CANARY}`',
        "maintainer_email": "zoë@exämple.de",
        "version": "2.0+really1.9~rc1",
        "init_system": "all",
    }
)
def test_h5_any_accepted_answers_give_lint_clean_shell_units_and_deb(
    workspace: Path, drawn: dict[str, str]
) -> None:
    CANARY.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(dir=workspace))
    checks = Path(tempfile.mkdtemp(dir=workspace))
    try:
        project = render_in(work, drawn)
        result = make(project, "deb")
        assert result.returncode == 0, result.stdout[-6000:]
        (deb,) = (project / "dist").glob("*.deb")
        # lintian (~2 s) runs, with its TMPDIR in build/, while the shell and the unit are checked.
        command = ["make", "-C", str(project), "lint-deb"]
        lintian = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for option, target in (("-x", checks / "root"), ("-e", checks / "control")):
                extracted = run(["dpkg-deb", option, str(deb), str(target)])
                assert extracted.returncode == 0, extracted.stderr
            check_shell(project, checks / "control")
            check_unit(checks / "root", project.name)
        finally:
            output, _ = lintian.communicate()
        assert not CANARY.exists()
        assert (lintian.returncode, lintian_findings(output)) == (0, []), output[-6000:]
        assert sorted(path.name for path in work.iterdir()) == ["cwd", "out"]
        assert list((work / "cwd").iterdir()) == []
        assert [path.name for path in (work / "out").iterdir()] == [project.name]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(checks, ignore_errors=True)
