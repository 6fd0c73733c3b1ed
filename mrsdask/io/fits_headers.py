"""The headers of a FITS file, read quickly when they are plain: :func:`read_headers`.

astropy makes an object of every card of every HDU and verifies them all (~8 ms for an MRS
``cal`` file, ~0.2 s of the 24 files of a multi cube, holding the GIL). Here the header
blocks are read, split into cards and the values of the plain kinds (strings, logicals,
integers, reals) parsed by astropy's own rules, the same values; a file with anything else
(long strings, ``HIERARCH``, complex or undefined values, record-valued cards, unparsable
cards, compressed or random-groups HDUs, repeated extension names, bytes after the last
HDU…) is read by astropy instead. Either way the result is the same :class:`Headers`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: FITS block and card sizes.
BLOCK = 2880
CARD = 80
#: Commentary cards: no value (not in the mappings :func:`read_headers` gives).
COMMENTARY = ("", "COMMENT", "HISTORY")

_KEYWORD = re.compile(r"[A-Z0-9_-]+ *\Z")
# astropy.io.fits.Card's number (blanks allowed inside, D exponents) and record-valued-card forms.
_NUMBER = re.compile(r"[+-]? *(\.\d+|\d+(\.\d*)?) *([deDE] *[+-]? *\d+)?\Z")
_RECORD_VALUED = re.compile(r" *[A-Za-z_]\w*(\.\d+)* *: *[+-]? *[.0-9]")
_TO_E = str.maketrans("dD", "eE", " ")


class _Unusual(Exception):
    """Something the quick reader leaves to astropy."""


@dataclass(frozen=True)
class Headers:
    """What :func:`read_headers` read.

    Attributes
    ----------
    names : tuple of str
        Every HDU's name, as astropy's ``HDU.name``.
    primary : Mapping
        The primary header, keyword → value (a dict or an astropy ``Header``).
    extensions : dict
        The headers of the extensions asked for that the file has, by name.
    end : int
        The offset just after the last HDU's data (its padding not counted): the size the
        file must have at least.
    data_at : dict
        The offset of each HDU's data, by name (as :attr:`names`).
    """

    names: tuple[str, ...]
    primary: Mapping[str, Any]
    extensions: dict[str, Mapping[str, Any]]
    end: int
    data_at: dict[str, int]


def read_headers(fobj, size: int, keep: tuple[str, ...] = ()) -> Headers:
    """The HDU names, the primary header and the headers of the extensions named ``keep`` of
    the FITS file open in ``fobj`` (binary, seekable, ``size`` bytes).

    Raises
    ------
    Exception
        What astropy raises for a file it cannot read.
    """
    try:
        return _read_plain(fobj, size, keep)
    except _Unusual:
        fobj.seek(0)
        return _read_astropy(fobj, keep)


def _read_astropy(fobj, keep: tuple[str, ...]) -> Headers:
    from astropy.io import fits

    with warnings.catch_warnings(), fits.open(fobj, lazy_load_hdus=False, memmap=False) as hdul:
        warnings.simplefilter("ignore")
        hdul.verify("silentfix")
        names = tuple(h.name for h in hdul)
        extensions = {name: hdul[name].header.copy() for name in keep if name in names}
        data_at = {h.name: h.fileinfo()["datLoc"] for h in reversed(hdul)}  # the first of a repeated name
        last = hdul[-1]
        return Headers(names, hdul[0].header.copy(), extensions, last.fileinfo()["datLoc"] + data_bytes(last.header),
                       data_at)


def data_bytes(header: Mapping[str, Any]) -> int:
    """Bytes of an HDU's data (without the padding to 2880), from its header (FITS standard §4.4.1)."""
    naxis = int(header.get("NAXIS", 0))
    if not naxis:
        return 0
    count = 1
    for k in range(1, naxis + 1):
        count *= int(header[f"NAXIS{k}"])
    return abs(int(header["BITPIX"])) // 8 * int(header.get("GCOUNT", 1)) * (count + int(header.get("PCOUNT", 0)))


def _read_plain(fobj, size: int, keep: tuple[str, ...]) -> Headers:
    names, headers, offset, end, offsets = [], {}, 0, 0, {}
    while offset < size:
        fobj.seek(offset)
        header, data_at = _header_at(fobj, offset, first=not names)
        if header.get("GROUPS") is True or header.get("ZIMAGE") is True or header.get("EXTVER", 1) != 1:
            raise _Unusual
        if names and "EXTNAME" not in header:
            raise _Unusual
        name = str(header.get("EXTNAME", "PRIMARY"))
        if name != name.strip().upper() or name in names:
            raise _Unusual  # astropy looks extensions up by their stripped, upper-case name
        names.append(name)
        if len(names) == 1 or name in keep:
            headers[len(names) - 1] = header
        offsets[name] = data_at
        end = data_at + data_bytes(header)
        offset = data_at + -(-(end - data_at) // BLOCK) * BLOCK
    if offset != size or not names:
        raise _Unusual  # bytes after the last HDU, or a file cut short: astropy says what it makes of it
    return Headers(tuple(names), headers[0], {names[i]: h for i, h in headers.items() if i}, end, offsets)


def _header_at(fobj, offset: int, first: bool) -> tuple[dict[str, Any], int]:
    """The header starting at ``offset`` (keyword → value, the first card of a keyword kept, as
    astropy's lookup) and the offset of its data."""
    cards: list[str] = []
    while True:
        block = fobj.read(BLOCK)
        if len(block) != BLOCK:
            raise _Unusual
        offset += BLOCK
        try:
            text = block.decode("ascii")
        except UnicodeDecodeError:
            raise _Unusual from None
        cards += [text[start:start + CARD] for start in range(0, BLOCK, CARD)]
        ends = [k for k in range(len(cards) - BLOCK // CARD, len(cards)) if cards[k][:8].rstrip() == "END"]
        if ends:
            break
    cards = cards[:ends[0]]
    header: dict[str, Any] = {}
    k = 0
    while k < len(cards):
        card = cards[k]
        keyword = card[:8].rstrip()
        if not card.isprintable() or not (keyword in COMMENTARY or _KEYWORD.match(card[:8])):
            raise _Unusual
        k += 1
        if keyword in COMMENTARY:
            if k < len(cards) and cards[k].startswith("CONTINUE"):
                raise _Unusual
            continue
        if card[8:10] != "= " or keyword in ("CONTINUE", "HIERARCH"):
            raise _Unusual
        more = k
        while more < len(cards) and cards[more].startswith("CONTINUE"):
            more += 1
        if any(c[8] != " " for c in cards[k:more]):
            raise _Unusual
        value = card_value(card[10:]) if more == k else _long_string([card[10:]] + [c[9:] for c in cards[k:more]])
        k = more
        header.setdefault(keyword, value)
    if not header or next(iter(header)) != ("SIMPLE" if first else "XTENSION") or header.get("SIMPLE", True) is not True:
        raise _Unusual
    return header, offset


def _long_string(fields: list[str]) -> str:
    """The value of a card continued by ``CONTINUE`` cards (their value fields ``fields``), as
    astropy joins it: each part's string, right-stripped, less one final ``&``, then read as
    one string."""
    parts = []
    for field in fields:
        if not field.isprintable():
            raise _Unusual
        raw = _string_at(field.strip(" "))
        if raw is None:
            raise _Unusual  # every part must be a string
        raw = raw.rstrip()
        parts.append(raw[:-1] if raw.endswith("&") else raw)
    return card_value("'" + "".join(parts) + "'")


def _string_at(text: str) -> str | None:
    """The raw contents (doubled quotes kept) of the string that ``text`` starts with, by
    astropy's rule: up to the first quote followed by the end, '/' or a blank after which only
    blanks and a comment follow; None if ``text`` holds no such string."""
    if not text.startswith("'"):
        return None
    at = text.find("'", 1)
    while at > 0:
        rest = text[at + 1:]
        if (not rest or rest[0] in " /") and (not rest.strip(" ") or rest.lstrip(" ").startswith("/")):
            return text[1:at]
        at = text.find("'", at + 1)
    return None


def card_value(field: str) -> str | bool | int | float:
    """The value of a card's value field (columns 11-80) as astropy's ``Card.value`` gives it,
    for a string, a logical, an integer or a real; :class:`_Unusual` for anything else."""
    text = field.strip(" ")
    if text.startswith("'"):
        raw = _string_at(text)
        if raw is None:
            raise _Unusual
        value = raw.replace("''", "'").rstrip()  # doubled quotes inside are one quote
        if _RECORD_VALUED.match(value):
            raise _Unusual  # astropy reads 'name: number' as a record-valued card
        return value
    value = text.split("/", 1)[0].rstrip(" ")
    if value in ("T", "F"):
        return value == "T"
    if not _NUMBER.match(value):
        raise _Unusual
    number = value.translate(_TO_E)
    try:
        return int(number)
    except ValueError:
        return float(number)
