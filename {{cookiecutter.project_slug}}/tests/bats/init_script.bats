#!/usr/bin/env bats
# The LSB init script's actions and exit codes, run against an install in a temporary
# prefix, as the user running the tests; starting needs root, since
# start-stop-daemon --chuid does.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

setup_file() {
	# The script calls start-stop-daemon, in /usr/sbin: init runs it with that on PATH,
	# a normal user's shell does not.
	export PATH=$PATH:/usr/sbin:/sbin
	export ROOT=$BATS_FILE_TMPDIR/root
	# The sources only: make install builds anew here, and pytest, running beside this file,
	# writes its caches meanwhile.
	mkdir "$BATS_FILE_TMPDIR/project"
	tar -C "$BATS_TEST_DIRNAME/../.." --exclude=./build --exclude=./dist --exclude=./.venv \
		--exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache -cf - . |
		tar -xf - -C "$BATS_FILE_TMPDIR/project"
	make -s -C "$BATS_FILE_TMPDIR/project" install prefix="$ROOT/usr" sysconfdir="$ROOT/etc" \
		localstatedir="$ROOT/var" runstatedir="$ROOT/run" >/dev/null
	# The service user, an identity fixed at generation, does not exist here: the installed
	# init script and its directory helper run as the user running the tests instead.
	sed -i "s/^USER=.*/USER=\"$(id -un)\"/" "$ROOT/etc/init.d/{{ cookiecutter.project_slug }}" \
		"$ROOT/usr/libexec/{{ cookiecutter.project_slug }}/prepare-dirs"
	sed -i 's/^port = .*/port = 0/' "$ROOT/etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf"
	export INIT=$ROOT/etc/init.d/{{ cookiecutter.project_slug }}
	export PIDFILE=$ROOT/run/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.pid
	export CONFIG=$ROOT/etc/{{ cookiecutter.project_slug }}/{{ cookiecutter.project_slug }}.conf
}

teardown() {
	if [ -f "$CONFIG.good" ]; then
		mv "$CONFIG.good" "$CONFIG"
	fi
	if [ -f "$PIDFILE" ]; then
		"$INIT" stop >/dev/null 2>&1 || true
	fi
}

# A config that loads but that a start cannot use; teardown puts the good one back.
break_log_file() {
	cp "$CONFIG" "$CONFIG.good"
	sed -i 's/^log_file = .*/log_file =/' "$CONFIG"
}

needs_root() {
	[ "$(id -u)" -eq 0 ] || skip "start-stop-daemon --chuid needs root"
}

@test "no action: usage on stderr, exit 2" {
	run -2 --separate-stderr "$INIT"
	assert_output ''
	[[ $stderr == Usage:* ]]
}

@test "unknown action: usage, exit 2" {
	run -2 "$INIT" frobnicate
	assert_output --partial 'Usage:'
}

@test "status of a stopped service: exit 3" {
	run -3 "$INIT" status
	assert_output --partial 'is not running'
}

@test "stop of a stopped service: exit 0" {
	run -0 "$INIT" stop
}

@test "try-restart of a stopped service: exit 0, still stopped" {
	run -0 "$INIT" try-restart
	run -3 "$INIT" status
}

@test "reload of a stopped service: exit 7" {
	run -7 "$INIT" reload
}

@test "rotate of a stopped service: exit 0" {
	run -0 "$INIT" rotate
}

@test "status with a stale pidfile: exit 1" {
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	mkdir -p "$(dirname "$PIDFILE")"
	echo "$dead" >"$PIDFILE"
	run -1 "$INIT" status
	rm -f "$PIDFILE"
}

@test "start, start again, reload, stop: one daemon, LSB exit codes" {
	needs_root
	run -0 "$INIT" start
	pid=$(cat "$PIDFILE")
	run -0 "$INIT" start
	assert_equal "$(cat "$PIDFILE")" "$pid"
	run -0 "$INIT" status
	run -0 "$INIT" reload
	run -0 "$INIT" status
	assert_equal "$(cat "$PIDFILE")" "$pid"
	run -0 "$INIT" stop
	run -3 "$INIT" status
	assert [ ! -e "/proc/$pid/cmdline" ] || [ -z "$(tr -d '\0' <"/proc/$pid/cmdline")" ]
}

@test "start with a broken config fails and starts nothing" {
	needs_root
	cp "$CONFIG" "$CONFIG.good"
	echo 'port = nope' >>"$CONFIG"
	run "$INIT" start
	mv "$CONFIG.good" "$CONFIG"
	assert_failure
	assert_output --partial 'port'
	run -3 "$INIT" status
}

@test "restart, try-restart, reload with a config the check refuses: exit 1, the same daemon runs on" {
	needs_root
	run -0 "$INIT" start
	pid=$(cat "$PIDFILE")
	break_log_file
	for action in restart try-restart reload force-reload; do
		run -1 "$INIT" "$action"
		assert_output --partial 'log_file is empty'
		assert_equal "$(cat "$PIDFILE")" "$pid"
		run -0 "$INIT" status
	done
}

@test "start that the check refuses: exit 1 with the reason, no pidfile left, status 3" {
	needs_root
	break_log_file
	run -1 "$INIT" start
	assert_output --partial 'log_file is empty'
	assert [ ! -e "$PIDFILE" ]
	run -3 "$INIT" status
}

@test "restart and force-reload of a running daemon restart it in place; restart of a stopped one starts it" {
	needs_root
	run -0 "$INIT" start
	pid=$(cat "$PIDFILE")
	run -0 "$INIT" restart
	run -0 "$INIT" force-reload
	assert_equal "$(cat "$PIDFILE")" "$pid"
	# The daemon counts its restarts in place in its environment; the script waited for both.
	run -0 sh -c "tr '\0' '\n' </proc/$pid/environ"
	assert_line REEXEC_GENERATION=2
	run -0 "$INIT" stop
	run -0 "$INIT" restart
	run -0 "$INIT" status
	refute [ "$(cat "$PIDFILE")" = "$pid" ]
}
