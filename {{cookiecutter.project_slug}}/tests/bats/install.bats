#!/usr/bin/env bats
# `make install` into a DESTDIR: the FHS layout, modes, and a clean uninstall. One install,
# the packages' way, serves every test that only reads it.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

setup_file() {
	cd "$BATS_TEST_DIRNAME/../.." || return 1
	export PROJECT=$PWD
	export INSTALLED=$BATS_FILE_TMPDIR/root
	make -s install DESTDIR="$INSTALLED" prefix=/usr sysconfdir=/etc unitdir=/lib/systemd/system >/dev/null
}

setup() {
	cd "$PROJECT" || return 1
	DEST=$INSTALLED
}

# A copy of the install, for a test that changes it.
own_copy() {
	DEST=$BATS_TEST_TMPDIR/root
	cp -a "$INSTALLED" "$DEST"
}

mode_of() {
	stat -c %a "$DEST$1"
}

@test "install lays out the daemon, its code and its configuration" {
	assert_equal "$(mode_of /usr/sbin/{{ cookiecutter.project_slug }})" 755
	assert_equal "$(mode_of /usr/lib/{{ cookiecutter.project_slug }}/{{ cookiecutter.package_name }}/daemon.py)" 644
	assert_equal "$(mode_of /etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf)" 644
	assert_equal "$(mode_of /etc/default/{{ cookiecutter.project_slug }})" 644
	assert_equal "$(mode_of /etc/logrotate.d/{{ cookiecutter.project_slug }})" 644
	assert_equal "$(mode_of /usr/share/man/man8/{{ cookiecutter.project_slug }}.8)" 644
}
{% if cookiecutter.init_system in ["all", "sysv"] %}
@test "install puts the init script in /etc/init.d, executable" {
	assert_equal "$(mode_of /etc/init.d/{{ cookiecutter.project_slug }})" 755
}
{% endif %}{% if cookiecutter.init_system in ["all", "systemd"] %}
@test "install puts the unit in unitdir" {
	assert_equal "$(mode_of /lib/systemd/system/{{ cookiecutter.project_slug }}.service)" 644
}
{% endif %}{% if cookiecutter.init_system in ["all", "upstart"] %}
@test "install puts the Upstart job in /etc/init" {
	assert_equal "$(mode_of /etc/init/{{ cookiecutter.project_slug }}.conf)" 644
}
{% endif %}{% if cookiecutter.init_system in ["all", "daemontools"] %}
@test "install puts the run script in /etc/sv, executable" {
	assert_equal "$(mode_of /etc/sv/{{ cookiecutter.project_slug }}/run)" 755
}
{% endif %}{% if cookiecutter.init_system in ["all", "supervisord"] %}
@test "install puts the supervisord program in /etc/supervisor/conf.d" {
	assert_equal "$(mode_of /etc/supervisor/conf.d/{{ cookiecutter.project_slug }}.conf)" 644
}
{% endif %}
@test "installed files carry the install paths, never the build tree's" {
	run grep -rlF "$PROJECT" "$DEST"
	assert_failure 1
	run grep -rl '@[A-Za-z_]*@' "$DEST"
	assert_failure 1
}

@test "prefix moves the code but not /etc" {
	DEST=$BATS_TEST_TMPDIR/root
	run make -s install DESTDIR="$DEST" prefix=/opt/x
	assert_success
	assert [ -x "$DEST/opt/x/sbin/{{ cookiecutter.project_slug }}" ]
	assert [ -f "$DEST/etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf" ]
	run grep -F 'log_file = /var/log/{{ cookiecutter.project_slug }}/' "$DEST/etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf"
	assert_success
}

@test "the installed launcher finds its code and checks a config" {
	config=$BATS_TEST_TMPDIR/{{ cookiecutter.project_slug }}.conf
	# The log directory is made on the target host, by the package or the first start.
	sed 's|^log_file = .*|log_file = -|' "$DEST/etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf" >"$config"
	run "$DEST/usr/sbin/{{ cookiecutter.project_slug }}" --config "$config" --check-config
	assert_success
	assert_output ''
}

@test "uninstall removes the program and keeps the configuration" {
	own_copy
	run make -s uninstall DESTDIR="$DEST" prefix=/usr sysconfdir=/etc unitdir=/lib/systemd/system
	assert_success
	assert [ ! -e "$DEST/usr/sbin/{{ cookiecutter.project_slug }}" ]
	assert [ ! -e "$DEST/usr/lib/{{ cookiecutter.project_slug }}" ]
	assert [ -f "$DEST/etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf" ]
}
