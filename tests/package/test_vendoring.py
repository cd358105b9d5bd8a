"""Vendored PyPI dependencies: inside the packages, no build path, relocatable, reproducible,
offline builds."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import vendor
from pkgbuild import Built, copy_project, make
from support import require_root, require_tool, run

# A small pure-Python dependency that brings one of its own, and a console script.
DEPENDENCY = "python-slugify==8.0.4"
VENDORED = {"slugify": "python-slugify", "text_unidecode": "text-unidecode"}
SYSTEM_PYTHON = "/usr/bin/python3"
CONFIG = "[service]\nlisten = 127.0.0.1\nport = 18089\nlog_file = -\n"


@pytest.fixture(scope="session")
def vendored(default: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The default project with DEPENDENCY in pyproject.toml, imported by its package."""
    project = copy_project(default, tmp_path_factory.mktemp("vendored"))
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert "dependencies = []" in text
    pyproject.write_text(text.replace("dependencies = []", f'dependencies = ["{DEPENDENCY}"]'))
    init = project / "src" / default.package / "__init__.py"
    init.write_text(init.read_text() + "\nimport slugify  # noqa: E402, F401 (the test's dependency)\n")
    result = make(project, "deb", "rpm", env=default.env())
    assert result.returncode == 0, result.stdout[-6000:]
    (deb,) = (project / "dist").glob("*.deb")
    (rpm,) = (project / "dist").glob("*.rpm")
    return dataclasses.replace(default, project=project, deb=deb, rpm=rpm, log=result.stdout)


def unpack_deb(built: Built, dest: Path) -> Path:
    assert run(["dpkg-deb", "-x", str(built.deb), str(dest)]).returncode == 0
    assert run(["dpkg-deb", "-e", str(built.deb), str(dest / "DEBIAN")]).returncode == 0
    return dest


def unpack_rpm(built: Built, dest: Path) -> Path:
    dest.mkdir()
    command = f"rpm2cpio '{built.rpm}' | cpio -idm --quiet"
    result = run(["sh", "-c", command], cwd=dest, env=built.env())
    assert result.returncode == 0, result.stderr
    return dest


def test_the_dependency_and_its_own_dependency_are_inside_the_deb(vendored: Built, tmp_path: Path) -> None:
    code = unpack_deb(vendored, tmp_path / "root") / "usr" / "lib" / vendored.slug
    for module, dist in VENDORED.items():
        assert (code / module / "__init__.py").is_file()
        assert len(list(code.glob(f"{dist.replace('-', '_')}-*.dist-info/METADATA"))) == 1
    # The console script would hold the build's interpreter path: left out.
    assert not (code / "bin").exists()
    assert not list(code.rglob("__pycache__"))


def test_vendoring_keeps_the_deb_architecture_all_and_its_depends(vendored: Built, default: Built) -> None:
    for name in ("Architecture", "Depends", "Pre-Depends"):
        ours = run(["dpkg-deb", "--field", str(vendored.deb), name]).stdout
        assert ours == run(["dpkg-deb", "--field", str(default.deb), name]).stdout, name


def test_the_rpm_holds_the_dependency_and_declares_it_bundled(vendored: Built, tmp_path: Path) -> None:
    code = unpack_rpm(vendored, tmp_path / "root") / "usr" / "share" / vendored.slug
    assert all((code / module / "__init__.py").is_file() for module in VENDORED)
    provides = run(["rpm", "-qp", "--provides", str(vendored.rpm)], env=vendored.env()).stdout.splitlines()
    assert sorted(line for line in provides if line.startswith("bundled(")) == [
        "bundled(python3dist(python-slugify)) = 8.0.4",
        "bundled(python3dist(text-unidecode)) = 1.3",
    ]


def test_no_installed_file_holds_a_path_of_the_build(vendored: Built, tmp_path: Path) -> None:
    roots = [unpack_deb(vendored, tmp_path / "deb"), unpack_rpm(vendored, tmp_path / "rpm")]
    needles = [
        str(vendored.project).encode(),
        str(vendored.project.parent).encode(),
        b"/build/",
        b"BUILDROOT",
    ]
    found = [
        (str(path.relative_to(tmp_path)), needle)
        for root in roots
        for path in root.rglob("*")
        if path.is_file()
        for needle in needles
        if needle in path.read_bytes()
    ]
    assert found == []


@pytest.mark.parametrize("package", ["deb", "rpm"])
def test_the_daemon_imports_the_dependency_from_the_tree_moved_elsewhere(
    vendored: Built, tmp_path: Path, package: str
) -> None:
    require_tool(SYSTEM_PYTHON)
    assert run([SYSTEM_PYTHON, "-I", "-c", "import slugify"]).returncode != 0, (
        "slugify is installed system-wide"
    )
    unpacked = (unpack_deb if package == "deb" else unpack_rpm)(vendored, tmp_path / "unpacked")
    moved = tmp_path / "another" / "root"
    moved.parent.mkdir()
    shutil.move(str(unpacked), str(moved))
    config = tmp_path / "test.conf"
    config.write_text(CONFIG)
    launcher = moved / "usr" / "sbin" / vendored.slug
    # The real launcher, through its own #! line: daemon.py imports slugify at the top.
    check = run([str(launcher), "--config", str(config), "--check-config"])
    assert check.returncode == 0, check.stderr
    where = (
        "import runpy, sys\n"
        f"sys.argv = [{str(launcher)!r}, '--config', {str(config)!r}, '--check-config']\n"
        "try:\n"
        f"    runpy.run_path({str(launcher)!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print(*(sys.modules[name].__file__ for name in ('slugify', 'text_unidecode')))\n"
    )
    result = run([SYSTEM_PYTHON, "-I", "-c", where])
    assert result.returncode == 0, result.stderr
    for path in result.stdout.split():
        assert Path(path).resolve().is_relative_to(moved), path


def test_lintian_passes_with_the_vendored_dependency(vendored: Built) -> None:
    require_tool("lintian")
    result = make(vendored.project, "lint-deb", env=vendored.env())
    print(result.stdout)
    assert result.returncode == 0, result.stdout
    tags = set(re.findall(r"^[EWIPXNO]: \S+: (\S+)", result.stdout, re.M))
    # The wheels' licence files, kept in their .dist-info (docs/packaging.md).
    assert tags == {"extra-license-file"}


def test_rpmlint_passes_with_the_vendored_dependency(vendored: Built) -> None:
    require_tool("rpmlint")
    result = make(vendored.project, "lint-rpm", env=vendored.env())
    assert result.returncode == 0, result.stdout
    assert "0 errors, 0 warnings" in result.stdout


def fake_pip(tmp_path: Path) -> dict[str, str]:
    """An environment in which `python -m pip` fails loudly, to prove nobody calls it."""
    package = tmp_path / "fake" / "pip"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("import sys\nsys.exit('pip was called')\n")
    return {"PYTHONPATH": str(package.parent)}


def test_the_package_builds_need_no_network_and_give_the_same_bytes(vendored: Built, tmp_path: Path) -> None:
    """pip installs the locked wheels offline; a new directory, so no build path may leak in."""
    require_root()
    require_tool("unshare")
    project = copy_project(vendored, tmp_path)
    command = ["unshare", "--net", "make", "-C", str(project), "clean", "deb", "rpm"]
    result = run(
        command, env=vendored.env(), stderr=subprocess.STDOUT, capture_output=False, stdout=subprocess.PIPE
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "  PIP install --quiet --no-index " in result.stdout
    for package in (vendored.deb, vendored.rpm):
        rebuilt = project / "dist" / package.name
        assert rebuilt.read_bytes() == package.read_bytes(), package.name


def test_the_default_project_never_calls_pip(default: Built, tmp_path: Path) -> None:
    assert "  PIP " not in default.log
    project = copy_project(default, tmp_path)
    lock = project / "wheels" / "requirements.txt"
    assert [line for line in lock.read_text().splitlines() if not line.startswith("#")] == []
    (project / "pyproject.toml").touch()
    result = make(project, "wheels", "build", env=default.env(**fake_pip(tmp_path)))
    assert result.returncode == 0, result.stdout
    assert "pip was called" not in result.stdout
    assert list((project / "build" / "vendor").iterdir()) == []


def test_an_edited_dependency_list_is_resolved_again(vendored: Built, tmp_path: Path) -> None:
    project = copy_project(vendored, tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'["{DEPENDENCY}"]', '["text-unidecode==1.3"]'))
    result = make(project, "wheels", env=vendored.env())
    assert result.returncode == 0, result.stdout
    assert sorted(path.name for path in (project / "wheels").glob("*.whl")) == [
        "text_unidecode-1.3-py2.py3-none-any.whl"
    ]


@pytest.mark.parametrize("package", ["deb", "rpm"])
def test_a_lock_made_from_other_dependencies_fails_the_build_whatever_the_file_times(
    default: Built, tmp_path: Path, package: str
) -> None:
    """As after a checkout: pyproject.toml lists a dependency, the lock is newer but made without it."""
    project = copy_project(default, tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = []", f'dependencies = ["{DEPENDENCY}"]')
    )
    later = pyproject.stat().st_mtime + 60
    os.utime(project / "wheels" / "requirements.txt", (later, later))
    result = make(project, "clean", package, env=default.env(**fake_pip(tmp_path)))
    assert result.returncode != 0, result.stdout[-4000:]
    assert (
        "vendor: wheels/requirements.txt was made from the dependencies [], but pyproject.toml lists "
        f'["{DEPENDENCY}"]: run `make wheels` to lock them again'
    ) in result.stdout
    assert "pip was called" not in result.stdout
    assert not (project / "dist").exists() or list((project / "dist").iterdir()) == []


def test_make_wheels_mends_a_lock_that_disagrees_and_the_deb_builds_again(
    vendored: Built, tmp_path: Path
) -> None:
    project = copy_project(vendored, tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'["{DEPENDENCY}"]', "[]"))
    lock = project / "wheels" / "requirements.txt"
    later = pyproject.stat().st_mtime + 60
    os.utime(lock, (later, later))
    env = vendored.env(**fake_pip(tmp_path))
    refused = make(project, "clean", "deb", env=env)
    assert refused.returncode != 0 and "run `make wheels` to lock them again" in refused.stdout

    result = make(project, "wheels", "deb", env=env)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "pip was called" not in result.stdout
    assert "# dependencies: []" in lock.read_text().splitlines()
    assert list((project / "wheels").glob("*.whl")) == []
    (deb,) = (project / "dist").glob("*.deb")
    listing = run(["dpkg-deb", "-c", str(deb)]).stdout
    assert "slugify" not in listing and f"/usr/lib/{vendored.slug}/{vendored.package}/" in listing


def test_these_tests_import_the_vendor_py_that_renders(default: Built) -> None:
    """The template's tools/vendor.py is imported as it is (pyproject.toml's pythonpath): sound only
    while rendering leaves it unchanged."""
    assert Path(vendor.__file__).read_text() == (default.project / "tools" / "vendor.py").read_text()


def make_wheel(directory: Path, name: str, files: dict[str, str], tag: str = "py3-none-any") -> Path:
    """A wheel that pip installs: the files, METADATA, WHEEL and a RECORD that lists them."""
    wheel = directory / f"{name}-1.0-{tag}.whl"
    info = f"{name}-1.0.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def lock_for(wheels: list[Path]) -> tuple[Path, Path]:
    """A pyproject.toml that lists "x" and a lock made from it that pins the wheels."""
    pyproject = wheels[0].parent / "pyproject.toml"
    pyproject.write_text('[project]\nname = "y"\ndependencies = ["x"]\n')
    lockfile = wheels[0].parent / "requirements.txt"
    pins = [vendor.Pin(wheel.name.split("-")[0], "1.0", vendor.sha256(wheel)) for wheel in wheels]
    vendor.write_lock(lockfile, vendor.Lock(["x"], pins))
    return pyproject, lockfile


def test_install_takes_purelib_drops_scripts_and_refuses_what_cannot_be_vendored(
    default: Built, tmp_path: Path
) -> None:
    good = make_wheel(
        tmp_path,
        "good",
        {
            "good/__init__.py": "",
            "good-1.0.data/purelib/extra.py": "",
            "good-1.0.data/scripts/good": "#!python\n",
        },
    )
    out = tmp_path / "out"
    vendor.install(*lock_for([good]), out, [default.package])
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "extra.py",
        "good-1.0.dist-info/METADATA",
        "good-1.0.dist-info/RECORD",
        "good-1.0.dist-info/WHEEL",
        "good/__init__.py",
    ]
    # RECORD lists what is shipped: not pip's own files, nor the scripts left out.
    record = (out / "good-1.0.dist-info" / "RECORD").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in record) == [
        "extra.py",
        "good-1.0.dist-info/METADATA",
        "good-1.0.dist-info/RECORD",
        "good-1.0.dist-info/WHEEL",
        "good/__init__.py",
    ]

    for files, tag, message in [
        ({"compiled/__init__.py": ""}, "cp311-cp311-linux_x86_64", "is not a pure-Python wheel"),
        ({f"{default.package}/__init__.py": ""}, "py3-none-any", "a name of the service itself"),
        (
            {"bad-1.0.data/headers/x.h": ""},
            "py3-none-any",
            r"installs \.\./\.\./include/.*/x\.h: only importable",
        ),
        ({"bad-1.0.data/data/share/x": ""}, "py3-none-any", r"installs \.\./\.\./share/x: only importable"),
    ]:
        wheeldir = tmp_path / f"refused-{len(list(tmp_path.iterdir()))}"
        wheeldir.mkdir()
        wheel = make_wheel(wheeldir, "bad", files, tag)
        with pytest.raises(vendor.VendorError, match=message):
            vendor.install(*lock_for([wheel]), wheeldir / "out", [default.package])


def test_pyproject_is_read_with_tomllib_and_its_errors_are_clear(
    default: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[tool.x]\ndependencies = ["no"]\n')
    assert vendor.read_dependencies(pyproject) == []
    pyproject.write_text('[project]\ndependencies = ["a==1",\n')
    with pytest.raises(vendor.VendorError, match=f"^{re.escape(str(pyproject))}: "):
        vendor.read_dependencies(pyproject)
    # As on Debian 11's Python 3.9 without python3-tomli.
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(
        vendor.VendorError, match=r"needs Python 3\.11 or later, or tomli: apt-get install python3-tomli"
    ):
        vendor.read_dependencies(pyproject)
