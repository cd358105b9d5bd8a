"""Jinja extension that cookiecutter loads before it asks anything (see _extensions).

It does two things that a pre_gen hook cannot, because they happen before hooks run:
- sandboxes Jinja, so an answer such as `{{ cycler.__init__.__globals__ }}` (given with
  --no-input, a config file or on the command line, where cookiecutter renders answers)
  renders inert or fails instead of running code;
- refuses bad answers before cookiecutter creates the project directory, so a slug such
  as `../x` or `/abs` never makes a directory anywhere.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

from jinja2 import Environment, Undefined
from jinja2.exceptions import UndefinedError
from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment

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


def _load_validator() -> types.ModuleType:
    path = Path(__file__).resolve().parent / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("platform_skel_pre_gen", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refuse_invalid(answers: dict[str, object]) -> str:
    errors = _load_validator().validate(dict(answers))
    if errors:
        for error in errors:
            print(f"ERROR: {error}", file=sys.stderr)
        # SystemExit passes through Jinja and cookiecutter untouched: exit 1, nothing written.
        raise SystemExit(1)
    return "ok"


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
        environment.filters["refuse_invalid"] = refuse_invalid
