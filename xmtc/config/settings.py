"""Every field of a run's config by its key ``section.field``: type, parsing, assignment, ``config.json``.

The command line (``--set net.dropout=0.1`` and named flags such as
``--dropout``, :mod:`xmtc.config.cli`) and a saved run's ``config.json``
(``--config``) reach the fields of :class:`~xmtc.config.DataConfig`,
:class:`~xmtc.config.NetConfig` and :class:`~xmtc.config.TrainConfig` through
this module. It reads the fields and their annotations from the dataclasses,
so a field added there is settable without a change here. Text is parsed by
the field's annotation:

=====================  =====================================================
annotation             text accepted
=====================  =====================================================
``int``, ``float``     ``32``, ``1e-3``
``bool``               ``true`` / ``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``)
``str``                as written
``X | None``           ``none`` (or ``null``) for ``None``, else as ``X``
``Literal[...]``       one of the listed values
``dict``               a JSON object; the key ``section.field.ENTRY`` sets one entry
=====================  =====================================================

The limit declared with each field (:func:`xmtc.config.schema.setting`) is
checked as a value is parsed, so an error names the key (and the command line's
flag) at once.

:func:`compose` is the one way to build a :class:`~xmtc.config.schema.RunConfig`:
preset + variant, or a saved ``config.json`` laid over the preset it names, then
overrides and ``key=value`` settings in order, validated. The command line
(:func:`xmtc.config.cli.config_from_args`), :func:`read_config`,
the checkpoint checks and the tests all call it.
"""

from __future__ import annotations

import difflib
import json
import math
import types
import typing
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

from xmtc.config.presets import preset
from xmtc.config.schema import (
    SECTIONS,
    ConfigError,
    RunConfig,
    check_limit,
    field_meta,
    validate,
)

_NONE = ("none", "null")



def flag_of(key: str) -> str | None:
    """The named flag of ``section.field`` (``net.dropout`` -> ``--dropout``; ``None``: it has none).

    The field's declaration may name another flag (``net.use_lightconv`` -> ``--lightconv``).
    """
    flag = field_meta(key).get("flag")
    if flag is False:
        return None
    return flag or "--" + key.split(".", 1)[1].replace("_", "-")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


# --------------------------------------------------------------------------- keys and types
@lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def keys() -> list[str]:
    """Every settable key, ``section.field``, in declaration order."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls)]


def field_type(key: str):
    """The annotation of ``section.field`` (resolved, e.g. ``int | None``)."""
    section, name, _ = split_key(key)
    return _hints(SECTIONS[section])[name]


def split_key(key: str) -> tuple[str, str, str | None]:
    """``"net.dropout"`` -> ``("net", "dropout", None)``; ``"data.options.n_docs"`` -> ``(..., "n_docs")``.

    Raises :class:`ConfigError` naming the unknown section or field (and the closest known one).
    """
    parts = key.split(".", 2)
    section = parts[0]
    if section not in SECTIONS:
        raise ConfigError(f"unknown section {section!r} in {key!r}; sections: {', '.join(SECTIONS)}")
    if len(parts) < 2 or not parts[1]:
        raise ConfigError(f"{key!r} names no field; write {section}.FIELD=VALUE")
    names = [f.name for f in fields(SECTIONS[section])]
    name = parts[1]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {section}.{close[0]}? " if close else ""
        raise ConfigError(f"unknown setting {section}.{name}; {hint}{section} has: {', '.join(names)}")
    entry = parts[2] if len(parts) == 3 else None
    if entry is not None and _base(_hints(SECTIONS[section])[name])[0] is not dict:
        raise ConfigError(f"{section}.{name} is not a dictionary; write {section}.{name}=VALUE")
    return section, name, entry


def _base(tp) -> tuple[object, bool]:
    """``(annotation without None, whether None is allowed)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), optional
    return tp, False


def describe(tp) -> str:
    """A short name of what an annotation accepts (``"integer or none"``), for help and errors."""
    base, optional = _base(tp)
    origin = typing.get_origin(base) or base
    if origin is typing.Literal:
        text = "one of " + ", ".join(str(a) for a in typing.get_args(base))
    else:
        text = {bool: "true or false", int: "an integer", float: "a number", str: "text",
                dict: "a JSON object"}.get(origin)
        if text is None:
            raise TypeError(f"no parser for the annotation {tp!r}; add one to xmtc/config/settings.py")
    return f"{text} or none" if optional else text


def metavar(tp) -> str:
    """The placeholder of a named flag's value (``N``, ``X``, ``{all,first_n}``)."""
    base, optional = _base(tp)
    origin = typing.get_origin(base) or base
    if origin is typing.Literal:
        mv = "{" + ",".join(str(a) for a in typing.get_args(base)) + "}"
    else:
        mv = {int: "N", float: "X", str: "TEXT", dict: "JSON", bool: "BOOL"}.get(origin, "VALUE")
    return f"{mv}|none" if optional else mv


# --------------------------------------------------------------------------- text -> value
def parse_text(text: str, tp, key: str):
    """Parse command-line ``text`` as a value of annotation ``tp``; :class:`ConfigError` names ``key``."""
    base, optional = _base(tp)
    s = text.strip()
    if optional and s.lower() in _NONE:
        return None
    try:
        return _parse(s, base)
    except _Bad as e:
        detail = f" ({e})" if str(e) else ""
        raise ConfigError(f"{key}: expected {describe(tp)}, got {text!r}{detail}") from None


class _Bad(ValueError):
    """Text that does not parse; the message (may be empty) says why, beyond the expected type."""


def _parse(s: str, tp):
    try:
        return _parse_or_raise(s, tp)
    except _Bad:
        raise
    except ValueError:
        raise _Bad("") from None


def _parse_or_raise(s: str, tp):
    origin = typing.get_origin(tp) or tp
    if origin is typing.Literal:
        for choice in typing.get_args(tp):
            if s == str(choice):
                return choice
        raise ValueError("")
    if origin is bool:
        if s.lower() in _TRUE:
            return True
        if s.lower() in _FALSE:
            return False
        raise ValueError("")
    if origin is int:
        return int(s)
    if origin is float:
        v = float(s)
        if not math.isfinite(v):
            raise _Bad("not finite")
        return v
    if origin is str:
        return s
    if origin is dict:
        v = json.loads(s)
        if not isinstance(v, dict):
            raise _Bad("")
        return v
    raise TypeError(f"no parser for the annotation {tp!r}")


def _literal(text: str):
    """A dictionary entry's value: JSON when it parses (``600``, ``true``, ``"a"``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignment(text: str) -> tuple[str, object]:
    """``"net.dropout=0.1"`` -> ``("net.dropout", 0.1)``, parsed and checked against the limits."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"expected SECTION.FIELD=VALUE (e.g. net.dropout=0.1), got {text!r}")
    return key, parse_value(key, value)


def parse_value(key: str, text: str):
    """The value of ``key`` written as ``text``, parsed and checked against the limits."""
    section, name, entry = split_key(key)
    if entry is not None:
        return _literal(text.strip())
    value = parse_text(text, field_type(key), key)
    check_limit(f"{section}.{name}", value)
    return value


def assign(cfg: RunConfig, key: str, value) -> None:
    """Set ``key`` (``section.field`` or ``section.field.ENTRY`` of a dictionary) on ``cfg``."""
    section, name, entry = split_key(key)
    part = getattr(cfg, section)
    if entry is None:
        setattr(part, name, value)
    else:
        setattr(part, name, {**getattr(part, name), entry: value})


# --------------------------------------------------------------------------- JSON -> value
def coerce(value, tp, key: str):
    """A JSON value (``config.json``) as annotation ``tp`` wants it (ints -> floats), or :class:`ConfigError`."""
    base, optional = _base(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: expected {describe(tp)}, got null")
    origin = typing.get_origin(base) or base
    ok = True
    if origin is typing.Literal:
        ok = value in typing.get_args(base)
    elif origin is bool:
        ok = isinstance(value, bool)
    elif origin is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif origin is str:
        ok = isinstance(value, str)
    elif origin is dict:
        ok = isinstance(value, dict)
    if not ok:
        raise ConfigError(f"{key}: expected {describe(tp)}, got {value!r}")
    return value


def compose(name: str | None = None, *, model: str | None = None, variant: str | None = None, fast: bool = False,
            saved: dict | None = None, overrides: dict | None = None, settings=(), out: str | None = None,
            where: str = "config") -> RunConfig:
    """The resolved, validated :class:`RunConfig` of a preset or a saved run, with changes.

    Parameters
    ----------
    name : the dataset preset (``--data``); with ``saved``, the preset the saved run names.
    model : one of ``MODEL_NAMES`` (default: the saved run's, else ``"otseq2set"``).
    variant, fast : the preset's variant (``"fast"``, ``"cpu"``); ``fast=True`` is ``variant="fast"``.
    saved : a saved config (``config.json``, ``RunConfig.to_dict()``, a checkpoint's
        ``config``), laid field by field over the preset it names, so a field it does
        not have (written before the field existed) keeps the preset's value; its other
        top-level entries (``model_config``, ...) are ignored; an unknown field is an
        error. ``"fast": true`` is how configs written before the cpu variant named it.
    overrides : ``{"data": {...}, "net": {...}, "train": {...}}``; ``None`` values are
        ignored (an option the user did not give).
    settings : ``(section.field, value)`` pairs, applied in order after ``overrides``
        (the command line's named flags and ``--set``).
    out : the run directory (after ``saved``'s).
    where : names the saved config in errors (its path).
    """
    if saved is not None:
        if not isinstance(saved, dict) or not any(isinstance(saved.get(s), dict) for s in SECTIONS):
            raise ConfigError(f"{where}: not a run's config.json (no {', '.join(SECTIONS)} sections)")
        try:
            cfg = _from_saved(saved, name=name, model=model)
            validate(cfg)  # the saved values themselves, named with the file
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    else:
        cfg = preset(name if name is not None else "synthetic", model=model or "otseq2set", fast=fast,
                     variant=variant)
    for section, values in (overrides or {}).items():
        if section == "out":
            cfg.out = cfg.out if values is None else str(values)
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"override: unknown config part {section!r}")
        for field_name, value in values.items():
            if value is not None:
                key = f"{section}.{field_name}"
                split_key(key)
                assign(cfg, key, {**getattr(cfg, section).options, **value} if key == "data.options" else value)
    for key, value in settings:
        assign(cfg, key, value)
    if out is not None:
        cfg.out = str(out)
    validate(cfg)
    return cfg


def _from_saved(saved: dict, *, name: str | None, model: str | None) -> RunConfig:
    top = {"model": str, "preset": str, "variant": str | None, "fast": bool, "out": str | None}
    vals = {k: coerce(saved[k], t, k) for k, t in top.items() if k in saved}
    data = saved.get("data") if isinstance(saved.get("data"), dict) else {}
    variant = vals.get("variant") or ("fast" if vals.get("fast") else None)
    cfg = preset(vals.get("preset", name or data.get("name", "synthetic")), model=vals.get("model", "otseq2set"),
                 variant=variant)
    if model is not None:
        cfg.model = model
    cfg.out = vals.get("out")
    for section in SECTIONS:
        values = saved.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{section} must be an object")
        for field_name, value in values.items():
            key = f"{section}.{field_name}"
            split_key(key)
            assign(cfg, key, coerce(value, field_type(key), key))
    return cfg


def read_config(path) -> RunConfig:
    """Read a run's ``config.json`` (or the one in run directory ``path``) as a :class:`RunConfig`."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:  # str(e) keeps "line L column C (char P)"
        raise ConfigError(f"{path} is not a JSON config ({e})") from None
    return compose(saved=saved, where=str(path))


__all__ = ["assign", "coerce", "compose", "describe", "field_type", "flag_of", "keys",
           "metavar", "parse_assignment", "parse_text", "parse_value", "read_config", "split_key"]
