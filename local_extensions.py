"""Jinja extension that cookiecutter loads before it asks anything (see _extensions).

It does what a pre_gen hook cannot, because it happens before hooks run:
- sandboxes Jinja, so an answer such as `{{ cycler.__init__.__globals__ }}` (given with
  --no-input, a config file or on the command line, where cookiecutter renders answers)
  renders inert or fails instead of running code;
- checks the answers at every render, in every mode (prompts, --no-input, --replay-file),
  so a bad one is refused before cookiecutter creates the project directory, and a slug
  such as `../x` or `/abs` never makes a directory anywhere;
- gives the templates one filter per format that an answer lands in, so that free text
  arrives as typed: escaped, never run.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
import types
from pathlib import Path
from typing import Any, Callable

import cookiecutter.prompt
from jinja2 import Environment, Template, Undefined
from jinja2.exceptions import UndefinedError
from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment
from slugify import slugify

_SANDBOX_METHODS = (
    "is_safe_attribute",
    "is_safe_callable",
    "call_binop",
    "call_unop",
    "getitem",
    "getattr",
    "wrap_str_format",
    "call",
)


# Loaded by its path: cookiecutter puts only the template's root on sys.path (appended last, and
# only while it renders), so hooks/ is not importable by name from the user's process.
@functools.cache
def _load_validator() -> types.ModuleType:
    path = Path(__file__).resolve().parent / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("platform_skel_pre_gen", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refuse_invalid(answers: dict[str, object]) -> None:
    errors = _load_validator().validate(dict(answers))
    if errors:
        for error in errors:
            print(f"ERROR: {error}", file=sys.stderr)
        # SystemExit passes through Jinja and cookiecutter untouched: exit 1, nothing written.
        raise SystemExit(1)


# The answers so far, as the last render saw them: the prompt checks a new one beside them.
_answered: dict[str, object] = {}


class CheckedTemplate(Template):
    """A template that refuses bad answers before it renders: cookiecutter renders the
    project directory's name before it makes it, also when it replays answers."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        answers = dict(*args, **kwargs).get("cookiecutter")
        if isinstance(answers, dict):
            refuse_invalid(answers)
            _answered.clear()
            _answered.update(answers)
        return super().render(*args, **kwargs)


def ask_until_valid(read: Callable[..., Any]) -> Callable[..., Any]:
    """cookiecutter's question, asked again until the answer passes; a default that would be
    refused (a slug derived from "7 Service") is flagged before it is offered."""

    def ask(var_name: str, default_value: Any, prompts: Any = None, prefix: str = "") -> Any:
        def problems(value: object) -> list[str]:
            return _load_validator().validate({**_answered, var_name: value})

        for error in problems(default_value) if default_value not in (None, "") else []:
            print(f"NOTE: the default {default_value!r} would be refused: {error}", file=sys.stderr)
        while True:
            value = read(var_name, default_value, prompts, prefix)
            errors = problems(value)
            if not errors:
                return value
            for error in errors:
                print(f"ERROR: {error}; try again", file=sys.stderr)

    return ask


def slug(text: str, max_length: int) -> str:
    """The name as a slug, cut at the last word that fits (python-slugify drops middle words)."""
    words = slugify(text).split("-")
    cut = words[0][:max_length]
    for word in words[1:]:
        if len(cut) + 1 + len(word) > max_length:
            break
        cut += "-" + word
    return cut


def shell(text: str) -> str:
    """One shell word in double quotes, where a backslash keeps $ ` \\ " literal (single quotes
    would too, but shellcheck then asks whether the $ was meant to expand)."""
    return '"' + re.sub(r'([$`\\"])', r"\\\1", text) + '"'


def percent(text: str) -> str:
    """A systemd unit value or an RPM spec line: % starts a specifier or a macro."""
    return text.replace("%", "%%")


def rfc5322_name(name: str) -> str:
    """A display name before <address> (debian/control, changelog): quoted when it has specials."""
    if not re.search(r'[,;:()\[\]@.<>"\\]', name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quoted(text: str) -> str:
    """A double-quoted string of TOML, Upstart or Python: \\ and " escaped, the rest as typed."""
    return json.dumps(text, ensure_ascii=False)


def python(text: str) -> str:
    """A Python string literal in the quotes that ruff format keeps."""
    return "'" + text.replace("\\", "\\\\") + "'" if '"' in text and "'" not in text else quoted(text)


def docstring(text: str) -> str:
    """Text inside a triple-quoted Python docstring."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


# groff would print these as typographic characters or read them as escapes. A leading . or '
# would be a request, but the man page puts text before every answer.
_ROFF = {"\\": "\\e", "-": "\\-", "'": "\\(aq", "`": "\\(ga", "^": "\\(ha", "~": "\\(ti"}


def roff(text: str) -> str:
    """Text of a man page line, which groff shows as typed: non-ASCII as \\[uXXXX]."""
    return "".join(_ROFF.get(c) or (c if c.isascii() else f"\\[u{ord(c):04X}]") for c in text)


def markdown(text: str) -> str:
    """Markdown text: CommonMark shows any backslash-escaped ASCII punctuation as itself."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def url_host(email: str) -> str:
    """The address's domain as a URL host: IDNA-encoded, ASCII."""
    return email.rsplit("@", 1)[1].encode("idna").decode("ascii")


def idna_address(email: str) -> str:
    """The same address with its domain IDNA-encoded, as lintian requires of Debian's fields."""
    return email.rsplit("@", 1)[0] + "@" + url_host(email)


FILTERS = {
    "slug": slug,
    "shell": shell,
    "systemd": percent,
    "rpm": percent,
    "rfc5322_name": rfc5322_name,
    "toml": quoted,
    "upstart": quoted,
    "python": python,
    "docstring": docstring,
    "roff": roff,
    "markdown": markdown,
    "url_host": url_host,
    "idna_address": idna_address,
}


class AnswerGuard(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        sandbox = SandboxedEnvironment()
        for attr in ("binop_table", "unop_table", "intercepted_binops", "intercepted_unops"):
            setattr(environment, attr, getattr(sandbox, attr))
        for name in _SANDBOX_METHODS:
            setattr(environment, name, types.MethodType(getattr(SandboxedEnvironment, name), environment))
        environment.sandboxed = True

        def refuse_unsafe(obj: object, attribute: str) -> Undefined:
            # An UndefinedError, unlike the sandbox's SecurityError, is what cookiecutter
            # reports as a message instead of a traceback.
            hint = f"an answer reaches for {type(obj).__name__}.{attribute}: answers are data, not code"
            return environment.undefined(hint, obj=obj, name=attribute, exc=UndefinedError)

        environment.unsafe_undefined = refuse_unsafe  # type: ignore[method-assign]
        environment.filters.update(FILTERS)
        environment.template_class = CheckedTemplate
        if not hasattr(cookiecutter.prompt.read_user_variable, "checked"):
            checked = ask_until_valid(cookiecutter.prompt.read_user_variable)
            checked.checked = True  # type: ignore[attr-defined]
            # prompt_for_config looks the function up in its module at each question.
            cookiecutter.prompt.read_user_variable = checked
