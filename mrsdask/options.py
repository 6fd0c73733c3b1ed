"""One declaration per step option: typed dataclass fields that make the CLI and the pipelines.

A step's options are the fields of one frozen dataclass (e.g.
:class:`mrsdask.cube.plan.CubeRequest`), each declared with :func:`option`: its default, one
line of help, its kind of value, unit, choices and official (stpipe) name. From that single
declaration come

* the ``mrsdask`` subcommand's flags (:func:`add_arguments`, :func:`from_arguments`),
* the pipeline step's parameters, their checks and ``mrsdask run --describe``
  (:func:`pipeline_params`, :func:`from_parameters`),
* the keyword arguments of the Python entry points (``mrsdask.cube.build(..., weighting="emsm")``:
  :func:`request_from`),

so adding an option to a step is one field in one file. :class:`Param` checks one user value
(a pipeline file is written by hand: a typo fails before any work, naming the step, the
parameter and what is accepted); the dataclass's own ``__post_init__`` does the checks that
involve several options.

Example::

    @dataclass(frozen=True)
    class Request:
        scalexy: float = option(0.0, "spaxel size", kind="float", unit="arcsec")
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mrsdask.errors import ParameterError

# --------------------------------------------------------------------------- checked values
#: Kinds of values a parameter may take.
KINDS = ("str", "int", "float", "bool", "choice", "str_list", "ranges", "pair")


@dataclass(frozen=True)
class Param:
    """One parameter of a pipeline step.

    Attributes
    ----------
    name : str
        Key in the step's mapping.
    kind : str
        ``str``, ``int``, ``float``, ``bool``, ``choice`` (one of ``choices``), ``str_list``
        (a string or a list of strings), ``ranges`` (a list of ``[min, max]`` pairs) or ``pair``
        (``[a, b]``, two numbers).
    default : object
        Value when the key is absent (``None``: not set).
    help : str
        One line for ``mrsdask run --describe``.
    choices : tuple of str
        Allowed values of a ``choice`` (and, for ``str_list``, of each item, if given).
    input_file : bool
        The value names input files (reference files, spectra): their size and modification
        time are part of the step's fingerprint.
    aliases : tuple of str
        Other keys accepted for it (names of earlier releases).
    """

    name: str
    kind: str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = field(default_factory=tuple)
    input_file: bool = False
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def convert(self, value: Any, where: str) -> Any:
        """The checked value; ``where`` names the step for the error message."""
        if value is None:
            return None
        check: Callable[[Any, str], Any] = getattr(self, f"_as_{self.kind}")
        return check(value, f"{where}: parameter {self.name!r}")

    def _as_str(self, value, where):
        if not isinstance(value, str) or not value:
            raise ParameterError(f"{where} must be a non-empty string, not {value!r}")
        return value

    def _as_int(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{where} must be an integer, not {value!r}")
        return value

    def _as_float(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{where} must be a number, not {value!r}")
        return float(value)

    def _as_bool(self, value, where):
        if not isinstance(value, bool):
            raise ParameterError(f"{where} must be true or false, not {value!r}")
        return value

    def _as_choice(self, value, where):
        if value not in self.choices:
            raise ParameterError(f"{where} is {value!r}; choose one of {', '.join(self.choices)}")
        return value

    def _as_str_list(self, value, where):
        items = [value] if isinstance(value, (str, int)) else value
        if not isinstance(items, list) or not items:
            raise ParameterError(f"{where} must be a string or a list of strings, not {value!r}")
        out = [str(item) for item in items]
        if self.choices:
            bad = [item for item in out if item.lower() not in self.choices]
            if bad:
                raise ParameterError(f"{where}: {bad[0]!r} is not one of {', '.join(self.choices)}")
        return out

    def _as_ranges(self, value, where):
        if not isinstance(value, list):
            raise ParameterError(f"{where} must be a list of [min, max] pairs, e.g. [[5.0, 5.1]]")
        out = []
        for pair in value:
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
                    or not pair[0] < pair[1]):
                raise ParameterError(f"{where}: {pair!r} is not a [min, max] pair with min < max")
            out.append((float(pair[0]), float(pair[1])))
        return out

    def _as_pair(self, value, where):
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise ParameterError(f"{where} must be two numbers [a, b], not {value!r}")
        return (float(value[0]), float(value[1]))


def check_parameters(params: dict[str, Any], accepted: tuple[Param, ...], where: str) -> dict[str, Any]:
    """All of a step's parameters, checked and with defaults filled in.

    Raises
    ------
    ParameterError
        For a key the step does not accept (with the closest accepted name) or a bad value.
    """
    by_name = {p.name: p for p in accepted}
    alias_of = {alias: p.name for p in accepted for alias in p.aliases}
    for alias, key in alias_of.items():
        if alias in params:
            if key in params:
                raise ParameterError(f"{where}: give {key!r} or its older name {alias!r}, not both")
            params = {**{k: v for k, v in params.items() if k != alias}, key: params[alias]}
    for key in params:
        if key not in by_name:
            close = difflib.get_close_matches(str(key), list(by_name), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"{where}: unknown parameter {key!r}{hint} (accepted: {', '.join(by_name)})")
    return {name: p.convert(params.get(name, p.default), where) for name, p in by_name.items()}


# --------------------------------------------------------------------------- declarations
#: Key of an option's :class:`OptionSpec` in a dataclass field's metadata.
METADATA_KEY = "mrsdask_option"


@dataclass(frozen=True)
class OptionSpec:
    """What a dataclass field declares about itself as a user-facing option.

    Attributes
    ----------
    help : str
        One line for ``--help`` and ``--describe`` (without unit or default: they are added).
    kind : str
        Kind of the user-facing value (:data:`KINDS`).
    choices : tuple of str
        Accepted values of a ``choice`` (or of each item of a ``str_list``).
    unit : str
        Unit of a number (``um``, ``arcsec``, ``deg``), shown in the help.
    official : str or None
        The official pipeline step's parameter name, when it differs from the field name;
        it is the pipeline key.
    flag : str or None
        The command-line flag (default ``--`` + the key with ``-`` for ``_``).
    aliases : tuple of str
        Other pipeline keys (and Python keyword names) accepted for this option (names of
        earlier releases).
    flag_aliases : tuple of str
        Other command-line flags accepted for it (e.g. the flag of an earlier release).
    parse : callable or None
        User value → field value (e.g. ``["1", "2"]`` → ``(1, 2)``).
    user_default : object
        The default as a user writes it, when it differs from the field's default (None:
        the same).
    input_file : bool
        The value names input files (their stamps enter a pipeline step's fingerprint).
    metavar : str or None
        Placeholder in the command-line help.
    """

    help: str
    kind: str
    choices: tuple[str, ...] = ()
    unit: str = ""
    official: str | None = None
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    flag_aliases: tuple[str, ...] = ()
    parse: Callable[[Any], Any] | None = None
    user_default: Any = None
    input_file: bool = False
    metavar: str | None = None


def option(default: Any, help: str, *, kind: str, **spec: Any) -> Any:
    """A dataclass field that is also a user-facing option (see :class:`OptionSpec`)."""
    return dataclasses.field(default=default, metadata={METADATA_KEY: OptionSpec(help=help, kind=kind, **spec)})


@dataclass(frozen=True)
class DeclaredOption:
    """One option of a dataclass: its field name, key, default and declaration."""

    name: str
    key: str
    default: Any
    spec: OptionSpec

    @property
    def user_default(self) -> Any:
        """The default as written on the command line or in a pipeline file."""
        if self.spec.user_default is not None:
            return self.spec.user_default
        return list(self.default) if isinstance(self.default, tuple) else self.default

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.key.replace("_", "-")

    def describe(self) -> str:
        """The help line with its unit and default."""
        text = self.spec.help + (f"; in {self.spec.unit}" if self.spec.unit else "")
        default = self.user_default
        if default is not None and default is not False:
            shown = " ".join(map(str, default)) if isinstance(default, list) else default
            text += f"; default {shown}"
        return text

    def to_field(self, value: Any) -> Any:
        """A checked user value as the field's value."""
        if value is None:
            return self.default
        return self.spec.parse(value) if self.spec.parse else value


def declared_options(cls: type) -> Iterator[DeclaredOption]:
    """The options of a dataclass, in field order (fields without :func:`option` are skipped)."""
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(METADATA_KEY)
        if spec is not None:
            yield DeclaredOption(f.name, spec.official or f.name, f.default, spec)


# --------------------------------------------------------------------------- command line
_ARG_TYPES = {"int": int, "float": float, "str": str}


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type) -> None:
    """Add one flag per option of ``cls``; unset flags stay out of the namespace.

    A ``cls`` with official steps (``OFFICIAL_STEPS``) also gets ``--params FILE``: an official
    stpipe parameter file whose values the flags given beside it override.
    """
    steps = getattr(cls, "OFFICIAL_STEPS", None)
    if steps:
        parser.add_argument("--params", default=None, metavar="FILE",
                            help=f"official stpipe parameter file of {' or '.join(steps)} (ASDF or .cfg, as "
                                 "Step.export_config writes); flags given here override its values")
    for opt in declared_options(cls):
        kw: dict[str, Any] = {"dest": opt.key, "default": argparse.SUPPRESS, "help": opt.describe()}
        kind = opt.spec.kind
        if kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif kind == "choice":
            kw["choices"] = list(opt.spec.choices)
        elif kind == "str_list":
            kw["nargs"] = "+"
        elif kind in ("pair", "ranges"):
            kw.update(nargs=2, type=float)
            if kind == "ranges":
                kw["action"] = "append"
        else:
            kw["type"] = _ARG_TYPES[kind]
        if opt.spec.metavar or (opt.spec.unit and kind in ("int", "float")):
            metavar = opt.spec.metavar or opt.spec.unit.upper()
            # Two values (nargs=2) name each one: "X Y" -> ("X", "Y"), not "X Y X Y".
            kw["metavar"] = tuple(metavar.split()) if kind in ("pair", "ranges") and " " in metavar else metavar
        parser.add_argument(opt.flag, *opt.spec.flag_aliases, **kw)


def from_arguments(cls: type, namespace: argparse.Namespace, **fixed: Any) -> Any:
    """An instance of ``cls`` from parsed flags (:func:`add_arguments`); unset flags keep defaults
    (or the values of the ``--params`` file)."""
    values = dict(fixed)
    if getattr(cls, "OFFICIAL_STEPS", None) and getattr(namespace, "params", None):  # --params is cls's
        base = request_from_step_file(cls, namespace.params)
        values = {opt.name: getattr(base, opt.name) for opt in declared_options(cls)} | values
    for opt in declared_options(cls):
        if hasattr(namespace, opt.key):
            value = getattr(namespace, opt.key)
            if opt.spec.kind == "pair":
                value = tuple(value)
            values[opt.name] = opt.to_field(value)
    return cls(**values)


# --------------------------------------------------------------------------- pipelines
def pipeline_params(cls: type) -> tuple[Param, ...]:
    """The pipeline parameters of the options of ``cls`` (checks, defaults, ``--describe``)."""
    return tuple(Param(opt.key, opt.spec.kind, opt.user_default, opt.describe(), opt.spec.choices,
                       opt.spec.input_file, opt.spec.aliases) for opt in declared_options(cls))


def from_parameters(cls: type, params: dict[str, Any], **fixed: Any) -> Any:
    """An instance of ``cls`` from checked pipeline parameters (keys as in :func:`pipeline_params`)."""
    values = dict(fixed)
    for opt in declared_options(cls):
        if opt.key in params:
            values[opt.name] = opt.to_field(params[opt.key])
    return cls(**values)


# --------------------------------------------------------------------------- Python calls
def request_from(cls: type, request: Any = None, where: str = "", **options: Any) -> Any:
    """The request of a Python entry point: ``request`` (default ``cls()``) with ``options`` applied.

    Parameters
    ----------
    cls : type
        The step's request dataclass (fields declared with :func:`option`).
    request : cls, optional
        A request to start from.
    where : str
        What is being called, for error messages (e.g. ``"mrsdask.cube.build"``).
    **options
        Field values by field name (``channels=(1, 2)``), or by pipeline key or older name
        with the value as a pipeline file writes it (``channel=["1", "2"]``), checked as the
        pipeline checks it.

    Raises
    ------
    ParameterError
        For a ``request`` of another type, an unknown keyword (naming the closest accepted
        one) or a value the request refuses.
    """
    where = where or cls.__name__
    if request is None:
        request = cls()
    elif not isinstance(request, cls):
        raise ParameterError(f"{where}: request must be a {cls.__name__}, not {type(request).__name__}")
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    keyed = {}
    for opt in declared_options(cls):
        for key in (opt.key, *opt.spec.aliases):
            keyed.setdefault(key, opt)
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key in fields:
            name = key
        elif key in keyed:
            opt = keyed[key]
            name = opt.name
            param = Param(opt.key, opt.spec.kind, opt.user_default, choices=opt.spec.choices)
            value = opt.to_field(param.convert(value, where))
        else:
            close = difflib.get_close_matches(str(key), sorted(fields | set(keyed)), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParameterError(f"{where}: unknown option {key!r}{hint} (accepted: {', '.join(sorted(fields))})")
        if name in values:
            raise ParameterError(f"{where}: option {name!r} given twice (as {key!r} and under another name)")
        values[name] = value
    return dataclasses.replace(request, **values) if values else request


# --------------------------------------------------------------------------- official parameter files
def request_from_step_file(cls: type, path: str, **options: Any) -> Any:
    """The request that an official stpipe parameter file asks for (``options`` override it).

    Parameters
    ----------
    cls : type
        A request dataclass with ``OFFICIAL_STEPS`` (``{step name: (import path, implied
        options)}``, e.g. ``MasterBackgroundStep`` implies ``method="master"``) and, where
        official parameters map onto its options otherwise than one to one, a static
        ``from_official_parameters(values, where) -> values``.
    path : str
        The ASDF or ``.cfg`` parameter file (:func:`mrsdask.io.step_parameters.read_step_parameters`).
    **options
        Options by name, over the file's values (as :func:`request_from`).

    Every parameter of the file is accounted for: one that an option of ``cls`` declares (by
    its official name or an alias) is used; stpipe's output and hook parameters are ignored
    (mrsdask names its outputs itself); an official parameter that mrsdask does not implement
    is accepted only at its official default; ``skip = True`` and unknown keys are refused.

    Raises
    ------
    ParameterError
        Naming the file, the parameter and why.
    """
    from mrsdask.io.step_parameters import STPIPE_GENERIC, read_step_parameters

    steps = getattr(cls, "OFFICIAL_STEPS", None) or {}
    read = read_step_parameters(str(path), {name: target for name, (target, _) in steps.items()})
    where = f"{path} ({read.step})"
    accepted = pipeline_params(cls)
    names = {p.name for p in accepted} | {alias for p in accepted for alias in p.aliases}
    chosen: dict[str, Any] = dict(steps[read.step][1])
    values = dict(read.values)
    translate = getattr(cls, "from_official_parameters", None)  # official layouts mrsdask declares otherwise
    if translate is not None:
        values = translate(values, where)
    for key, value in values.items():
        if key in names:
            chosen[key] = value
        elif key == "skip":
            if value:
                default = " (the official default of this step)" if read.defaults.get("skip") else ""
                raise ParameterError(f"{where}: skip = True{default} turns the step off; set skip = False "
                                     "in the file to run it")
        elif key in STPIPE_GENERIC:
            continue
        elif key in read.defaults:
            if value != read.defaults[key]:
                raise ParameterError(
                    f"{where}: parameter {key!r} = {value!r} is not implemented by mrsdask (only its official "
                    f"default {read.defaults[key]!r}); remove it from the file")
        elif key.startswith("override_") and value in (None, "", "N/A"):
            continue  # a reference file left to CRDS
        else:
            close = difflib.get_close_matches(str(key), sorted(names | set(read.defaults)), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParameterError(f"{where}: unknown parameter {key!r}{hint}")
    base = from_parameters(cls, check_parameters(chosen, accepted, where))
    return request_from(cls, base, where, **options) if options else base
