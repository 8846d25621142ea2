"""``--config FILE.toml`` for ``cnnjax train`` and ``cnnjax ablate``, and the saved
effective configuration (``config.toml``).

A config file is a flat TOML table whose keys are the subcommand's long option names, with
dashes or underscores (``batch-size = 64`` or ``batch_size = 64``); list options take a
TOML list or a comma-separated string; switches take ``true``/``false``. The file's values
become the parser's defaults, checked by the same argument types as the flags, so a flag
given on the command line overrides the file. The run writes the configuration it
actually used (every option, defaults included) as ``config.toml`` next to its results,
which ``--config`` reads back to repeat the run.
"""
from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path

from cnnjax.cli.args import UsageError

CONFIG_FILE = "config.toml"
# Options that describe the invocation rather than the run: neither read nor saved.
# (--restart too: a saved ``restart = true`` would wipe the checkpoints on every repeat.)
_SKIP = {"help", "config", "version", "report-only", "restart"}


def _options(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """``{long option name without dashes: action}`` of a subcommand, in parser order."""
    out = {}
    for action in sub._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and longs[0][2:] not in _SKIP:
            out[longs[0][2:]] = action
    return out


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


def _config_path(argv: Sequence[str]) -> str | None:
    path = None
    for i, a in enumerate(argv):
        if a == "--config":
            if i + 1 >= len(argv):
                raise UsageError("--config needs a FILE.toml argument")
            path = argv[i + 1]
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
    return path


def _given(action: argparse.Action, argv: Sequence[str]) -> bool:
    return any(a == o or a.startswith(o + "=") for a in argv for o in action.option_strings)


def _convert(name: str, action: argparse.Action, value, path: str):
    """The file's value as the parser would produce it from the flag."""
    where = f"--config {path}: {name}"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, got {value!r}")
        return value if isinstance(action, argparse._StoreTrueAction) else not value
    if isinstance(value, bool) or isinstance(value, dict):
        raise UsageError(f"{where} must be a {'list' if isinstance(action, argparse._AppendAction) else 'value'} "
                         f"like the flag's, got {value!r}")
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    try:
        converted = action.type(text) if action.type is not None else text
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"{where} {e}") from None
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{where} must be one of {', '.join(map(str, action.choices))}, "
                         f"got {value!r}")
    return [converted] if isinstance(action, argparse._AppendAction) else converted


def apply_config(parser: argparse.ArgumentParser, command: str, argv: Sequence[str]) -> None:
    """Reads ``--config FILE`` (if in ``argv``) into ``command``'s parser defaults.

    Raises:
      UsageError: the file is missing or not TOML, a key is unknown (the message lists the
        valid ones), or a value fails the option's check.
    """
    path = _config_path(argv)
    if path is None:
        return
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as e:
        raise UsageError(f"--config must be a readable TOML file, got {path!r} "
                         f"({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--config {path} is not valid TOML ({e})") from None
    sub = subparser(parser, command)
    options = _options(sub)
    defaults = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name not in options:
            raise UsageError(f"--config {path}: unknown key {key!r}; valid keys for "
                             f"{command}: {', '.join(options)}")
        action = options[name]
        converted = _convert(name, action, value, path)
        if not (isinstance(action, argparse._AppendAction) and _given(action, argv)):
            # Appending options would add a flag's values to the file's; the flag wins.
            defaults[action.dest] = converted
    sub.set_defaults(**defaults)


def _toml_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        items = [_toml_value(v) for v in value]
        return "[" + ", ".join(i for i in items if i is not None) + "]"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def effective_config(parser: argparse.ArgumentParser, command: str,
                     args: argparse.Namespace) -> dict:
    """``{option name: value}`` of every option of ``command`` as parsed (lists flattened)."""
    from cnnjax.cli.args import flatten

    out = {}
    for name, action in _options(subparser(parser, command)).items():
        value = getattr(args, action.dest, None)
        if isinstance(action, argparse._AppendAction):
            value = flatten(value)
        if isinstance(action, argparse._StoreFalseAction):
            value = not value
        out[name] = value
    return out


def write_config(config: dict, directory: str | os.PathLike, command: str) -> Path:
    """Writes ``config`` as ``directory/config.toml`` (unset options as comments)."""
    lines = [f"# The effective configuration of this `cnnjax {command}` run; repeat it with",
             f"# cnnjax {command} --config {CONFIG_FILE}"]
    for name, value in config.items():
        text = _toml_value(value)
        lines.append(f"# {name} is unset (its default)" if text is None else f"{name} = {text}")
    path = Path(directory) / CONFIG_FILE
    tmp = path.with_name(CONFIG_FILE + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
