# debian/changelog as an RPM %changelog: `make rpm` appends the result to the spec,
# so the version and its history are written once. Release is always 1: each entry
# of debian/changelog is a new version of this native package.
/^[^ \t]/ { version = $2; gsub(/[()]/, "", version); body = ""; next }
/^  \* / { body = body "- " substr($0, 5) "\n"; next }
/^    [^ ]/ { body = body "  " substr($0, 5) "\n"; next }
/^ -- / {
	split(substr($0, 5), trailer, ">  ")
	command = "LC_ALL=C date -u -d '" trailer[2] "' '+%a %b %d %Y'"
	command | getline day
	close(command)
	gsub(/%/, "%%", trailer[1])  # the maintainer's name, where % would start a macro
	printf "* %s %s> - %s-1\n%s\n", day, trailer[1], version, body
}
