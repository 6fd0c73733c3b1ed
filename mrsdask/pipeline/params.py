"""Step parameters of pipeline definitions: what each accepts, and the checks on a value.

A pipeline file is written by hand; a typo must fail before any work starts, with the step,
the parameter and what is accepted. :class:`Param` describes one parameter and turns a YAML
value into the Python value the step uses (or raises :class:`~mrsdask.errors.ParameterError`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from mrsdask.errors import ParameterError

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
    """

    name: str
    kind: str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = field(default_factory=tuple)
    input_file: bool = False

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
    for key in params:
        if key not in by_name:
            close = difflib.get_close_matches(str(key), list(by_name), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"{where}: unknown parameter {key!r}{hint} (accepted: {', '.join(by_name)})")
    return {name: p.convert(params.get(name, p.default), where) for name, p in by_name.items()}
