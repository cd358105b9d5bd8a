"""`make publish`: the .deb lands in a reprepro APT repository that apt can read."""

from __future__ import annotations

from pathlib import Path

from support import render, require_tool, run, signing_key


def test_publish_adds_the_deb_to_an_apt_repository_once(tmp_path: Path) -> None:
    require_tool("reprepro", "dpkg-buildpackage", "gpg")
    project = render(tmp_path / "render")
    repo = tmp_path / "apt"
    with signing_key() as (env, key):
        for _ in range(2):
            result = run(["make", "-C", str(project), "publish", f"REPO={repo}", f"KEY={key}"], env=env)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    packages = (repo / "dists/stable/main/binary-amd64/Packages").read_text()
    assert packages.count("Package: my-service\n") == 1
    assert "Version: 0.1.0\n" in packages
    assert "Filename: pool/main/m/my-service/my-service_0.1.0_all.deb\n" in packages
    deb = project / "dist/my-service_0.1.0_all.deb"
    assert (repo / "pool/main/m/my-service/my-service_0.1.0_all.deb").read_bytes() == deb.read_bytes()
    assert (repo / "dists/stable/InRelease").read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    assert f"SignWith: {key}\n" in (repo / "conf/distributions").read_text()
    assert (repo / "my-service.gpg").stat().st_size > 0


def test_publish_keeps_an_existing_repository_configuration(tmp_path: Path) -> None:
    require_tool("reprepro", "dpkg-buildpackage", "gpg")
    project = render(tmp_path / "render")
    conf = tmp_path / "apt/conf/distributions"
    conf.parent.mkdir(parents=True)
    custom = (
        (project / "deploy/apt/distributions")
        .read_text()
        .replace("Codename: stable", "Codename: stable\nSuite: prod")
    )
    conf.write_text(custom)
    # Its SignWith is the shipped "yes": gpg's default key signs it.
    with signing_key() as (env, _):
        result = run(["make", "-C", str(project), "publish", f"REPO={tmp_path / 'apt'}"], env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert conf.read_text() == custom
    assert "Suite: prod" in (tmp_path / "apt/dists/stable/Release").read_text()


def test_publish_refuses_to_create_an_unsigned_repository(tmp_path: Path) -> None:
    require_tool("reprepro", "dpkg-buildpackage")
    project = render(tmp_path / "render")
    result = run(["make", "-C", str(project), "publish", f"REPO={tmp_path / 'apt'}"])
    assert result.returncode == 2
    assert "a new repository is signed: give KEY=<gpg key id>" in result.stderr
    assert not (tmp_path / "apt").exists()
