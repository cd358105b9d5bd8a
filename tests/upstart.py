"""A checker for Upstart 1.x job files, after init(5) of Upstart 1.13.

Upstart does not run on Debian 12, and no validator for its jobs is packaged, so
the tests check each stanza against the grammar here and `sh -n` each script block.
"""

from __future__ import annotations

import re
import subprocess

SIGNAL = r"(SIG)?[A-Z][A-Z0-9]*|[0-9]+"
# Stanza -> pattern for the rest of its line.
STANZAS = {
    "description": r'".*"|\S.*',
    "author": r'".*"|\S.*',
    "version": r'".*"|\S.*',
    "usage": r'".*"|\S.*',
    "instance": r"\S+",
    "emits": r"\S+( \S+)*",
    "start on": r"\S.*",
    "stop on": r"\S.*",
    "manual": r"",
    "task": r"",
    "respawn": r"",
    "respawn limit": r"[0-9]+ [0-9]+|unlimited",
    "normal exit": rf"({SIGNAL})( ({SIGNAL}))*",
    "console": r"none|log|output|owner",
    "env": r"[A-Za-z_][A-Za-z0-9_]*(=.*)?",
    "export": r"[A-Za-z_][A-Za-z0-9_]*",
    "umask": r"0?[0-7]{3}",
    "nice": r"-?[0-9]+",
    "oom score": r"-?[0-9]+|never",
    "limit": r"[a-z]+ ([0-9]+|unlimited) ([0-9]+|unlimited)",
    "chroot": r"/\S*",
    "chdir": r"/\S*",
    "setuid": r"[a-z_][a-z0-9_-]*",
    "setgid": r"[a-z_][a-z0-9_-]*",
    "kill signal": SIGNAL,
    "kill timeout": r"[0-9]+",
    "reload signal": SIGNAL,
    "expect": r"fork|daemon|stop",
    "exec": r"\S.*",
    "apparmor load": r"\S+",
    "apparmor switch": r"\S+",
    "cgroup": r"\S.*",
}
PROCESSES = ("pre-start", "post-start", "pre-stop", "post-stop")


def _stanza(line: str) -> tuple[str, str] | None:
    for name in sorted(STANZAS, key=len, reverse=True):
        if line == name or line.startswith(name + " "):
            return name, line[len(name) :].strip()
    return None


def check(text: str) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """Return (errors, script blocks, stanzas with their arguments)."""
    errors: list[str] = []
    scripts: list[str] = []
    stanzas: dict[str, list[str]] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[-1] == "script" and (line == "script" or (len(words) == 2 and words[0] in PROCESSES)):
            block: list[str] = []
            while index < len(lines) and lines[index].strip() != "end script":
                block.append(lines[index])
                index += 1
            if index == len(lines):
                errors.append(f"line {number}: '{line}' has no 'end script'")
            index += 1
            scripts.append("\n".join(block) + "\n")
            stanzas.setdefault(line, []).append("")
            continue
        if words[0] in PROCESSES and len(words) > 2 and words[1] == "exec":
            stanzas.setdefault(f"{words[0]} exec", []).append(" ".join(words[2:]))
            continue
        found = _stanza(line)
        if found is None:
            errors.append(f"line {number}: unknown stanza: {line}")
            continue
        name, argument = found
        if not re.fullmatch(STANZAS[name], argument):
            errors.append(f"line {number}: bad argument for '{name}': {argument!r}")
        if name in ("start on", "stop on") and argument.count("(") != argument.count(")"):
            errors.append(f"line {number}: unbalanced parentheses in '{name}'")
        stanzas.setdefault(name, []).append(argument)
    for number, script in enumerate(scripts, 1):
        result = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            errors.append(f"script block {number}: sh -n: {result.stderr.strip()}")
    return errors, scripts, stanzas
