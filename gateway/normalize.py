"""Normalise and check the fields of a payment record: ID number, name,
account number and amount.

These functions sit on the hot path: a municipal batch runs each of them a
million times. They are pure, compile nothing per call, and use table-driven
arithmetic instead of libraries. python-stdnum serves only the tests, as an
independent oracle for the check-digit math.

Invariants:
  * Normalising never validates and never raises: ``normalize_*`` returns
    text that may still be invalid, and the matching check decides. The
    gateway stores and compares normalised values only, so a full-width digit
    or a stray space cannot make one person look like two.
  * An ID number is valid only if it has 17 digits and a check character that
    satisfies ISO 7064 MOD 11-2, a real birth date between 1900-01-01 and
    today, and a real province-level region code (GB 11643). The county part
    of the region code is NOT checked against the year of birth: numbers were
    assigned years after birth, so an elderly person's number often carries a
    county code created after they were born, or one since abolished. (This
    is why python-stdnum's full ``cn.ric`` validation is not used.)
  * A card number must pass the Luhn check, but the gateway never rejects a
    person's *registered* account on Luhn alone: some genuine Chinese cards
    fail it, and passbooks have no check digit (see ``gateway.rules``).

AmountGrammar -- how a department writes an amount, in yuan:
  * optional spaces, an optional sign and an optional ``¥``/``￥`` in either
    order (``-¥5``, ``¥ -5``; spaces may follow each), then the yuan with at
    most 10 digits (so a million-record total stays within a signed 64-bit
    count of fen), optionally grouped in thousands with commas
    (``1,234.50``), then optionally ``.`` and one or two decimals; full-width
    digits and punctuation count as their ASCII forms;
  * more than two decimals only as a spreadsheet's float artifact: a value
    within a thousandth of a fen of a whole fen (``84.15000000000001``) is
    that fen; anything else (``84.151``) is not an amount;
  * nothing else: no Chinese numerals, no units, no exponent, no empty text.
  The manifest total is the sum of every amount for which parse_amount_fen is
  not None (whatever its sign).
  Zero and negative amounts parse; refusing them is a rule
  (AMOUNT_INVALID), so they still count in the manifest total.

Money is an integer number of fen everywhere; no float ever holds an amount.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import ROUND_HALF_EVEN, Context, Decimal
from operator import mul

# --- ID numbers (GB 11643) -------------------------------------------------

# Full-width digits and X fold to ASCII; a lower-case x is upper-cased.
# Zero-width characters and byte-order marks that spreadsheets leave behind
# are deleted. Whitespace is removed separately by ``str.split``.
_FULLWIDTH_DIGITS: dict[int, str | None] = {0xFF10 + i: str(i) for i in range(10)}
_INVISIBLE: dict[int, str | None] = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff")
)
_ID_FOLD = str.maketrans(
    {**_FULLWIDTH_DIGITS, **_INVISIBLE, **dict.fromkeys(map(ord, "x\uff38\uff58"), "X")}
)

# ISO 7064 MOD 11-2 weights for the 17 body digits, and the check character
# for each remainder of the weighted sum.
_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK_CHARS = "10X98765432"
_CLEAN_LAST = frozenset("0123456789Xx")
# The digits are summed as ASCII bytes; this removes the b"0" offsets.
_ID_ASCII_OFFSET = ord("0") * sum(_ID_WEIGHTS)

# Province-level codes of GB/T 2260, plus 71 (Taiwan), 81 (Hong Kong) and
# 82 (Macao), and 83, which residence permits for Taiwan residents carry.
_PROVINCES = frozenset(
    {
        *("11", "12", "13", "14", "15"),  # North
        *("21", "22", "23"),  # North-east
        *("31", "32", "33", "34", "35", "36", "37"),  # East
        *("41", "42", "43", "44", "45", "46"),  # Centre and south
        *("50", "51", "52", "53", "54"),  # South-west
        *("61", "62", "63", "64", "65"),  # North-west
        *("71", "81", "82", "83"),
    }
)
# Mainland provinces, as the second and third digits of a number that starts
# with 9: the 2023 foreigner's permanent residence ID card.
_MAINLAND_PROVINCES = frozenset(p for p in _PROVINCES if p < "70")

_EARLIEST_BIRTH = dt.date(1900, 1, 1)


def normalize_id_number(text: str) -> str:
    """The ID number without whitespace, in ASCII, upper case, 18 characters
    if it was a legacy 15-digit number. The result may still be invalid."""
    if (
        len(text) == 18
        and text.isascii()
        and text[17] in _CLEAN_LAST
        and text[:17].isdigit()
    ):
        # The common case: already clean, but for a lower-case x.
        return text if text[17] != "x" else text[:17] + "X"
    folded = "".join(text.translate(_ID_FOLD).split())

    if len(folded) == 15 and folded.isascii() and folded.isdigit():
        # GB 11643-1989 numbers: six-digit region, YYMMDD, three-digit order.
        body = folded[:6] + "19" + folded[6:]
        return body + id_check_char(body)

    return folded


def id_check_char(body: str) -> str:
    """The ISO 7064 MOD 11-2 check character for 17 ASCII digits."""
    total = sum(map(mul, _ID_WEIGHTS, body.encode("ascii"))) - _ID_ASCII_OFFSET
    return _ID_CHECK_CHARS[total % 11]


def id_number_looks_numeric(text: str) -> bool:
    """Whether a spreadsheet stored this ID number as a number.

    The signal is deliberately narrow: an exponent (``5.00154E+17``) or a
    decimal point (``500154199001011234.0``). Such a number has lost its last
    digits and can only be fixed by re-entering it as text.
    """
    return "." in text or "E+" in text or "e+" in text


def id_birth_date(normalised: str) -> dt.date | None:
    """The birth date written in an 18-character number, if it is a real date."""
    if len(normalised) != 18 or not normalised.isascii():
        return None
    digits = normalised[6:14]
    if not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def check_id_number(normalised: str, today: dt.date) -> bool:
    """Whether a normalised ID number is valid under GB 11643 (see module doc)."""
    if len(normalised) != 18 or not normalised.isascii():
        return False
    body = normalised[:17]
    if not body.isdigit():
        return False

    # 1. Check character.
    if id_check_char(body) != normalised[17]:
        return False

    # 2. Province-level region code; the county part is not checked.
    if body[0] == "9":
        if body[1:3] not in _MAINLAND_PROVINCES:
            return False
    elif body[:2] not in _PROVINCES:
        return False

    # 3. A real birth date, not before 1900 and not in the future.
    born = id_birth_date(normalised)
    return born is not None and _EARLIEST_BIRTH <= born <= today


# --- Names -----------------------------------------------------------------

# The middle dot between the parts of a minority or foreign name has many
# look-alikes. After NFKC, U+FF0E (full-width full stop) has become "." and
# U+FF65 has become U+30FB; all fold to U+00B7, the dot on ID cards.
_NAME_DOT = "\u00b7"
_NAME_FOLD = str.maketrans(dict.fromkeys(".\u2022\u30fb\u2027\u2219\u2e31", _NAME_DOT))

# CJK unified ideographs (basic and extensions A to I) and the ideographic
# zero; Latin letters, including Latin-1 letters with diacritics.
_CJK = (
    "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002ee5f\U00030000-\U000323af"
)
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# A Chinese name: CJK runs joined by single middle dots. A name in Latin
# letters: words joined by a single space, hyphen, apostrophe or middle dot.
_VALID_NAME = re.compile(
    f"[{_CJK}]+(?:{_NAME_DOT}[{_CJK}]+)*|[{_LATIN}]+(?:[ '\\-{_NAME_DOT}][{_LATIN}]+)*"
)
_MAX_NAME_LENGTH = 30


def normalize_name(text: str) -> str:
    """The name in NFKC, trimmed, with one kind of middle dot.

    Whitespace inside a name collapses to one space between Latin words and
    disappears next to a CJK character or a middle dot, so that ``张  三``
    (padded to line up in a spreadsheet) becomes ``张三``.
    """
    parts = unicodedata.normalize("NFKC", text).translate(_NAME_FOLD).split()
    if len(parts) <= 1:
        return parts[0] if parts else ""

    joined = [parts[0]]
    for part in parts[1:]:
        if _joins_tightly(joined[-1][-1]) or _joins_tightly(part[0]):
            joined.append(part)
        else:
            joined.append(" " + part)
    return "".join(joined)


def _joins_tightly(ch: str) -> bool:
    return ch == _NAME_DOT or _CJK_CHAR.match(ch) is not None


def name_valid(name: str) -> bool:
    """Whether a normalised name is 1 to 30 characters of one script, CJK
    (parts joined by ``·``) or Latin (words joined by space, ``-``, ``'`` or
    ``·``), with no digits or other symbols."""
    return 0 < len(name) <= _MAX_NAME_LENGTH and _VALID_NAME.fullmatch(name) is not None


# --- Account numbers -------------------------------------------------------

_ACCOUNT_FOLD = str.maketrans({**_FULLWIDTH_DIGITS, **_INVISIBLE})
_ACCOUNT_MIN_DIGITS = 10
_ACCOUNT_MAX_DIGITS = 30

# For Luhn: the digit sum of twice each digit, indexed by its ASCII byte.
_LUHN_DOUBLED = bytes(
    (2 * (b - 48)) // 10 + (2 * (b - 48)) % 10 if 48 <= b <= 57 else 0
    for b in range(256)
)


def normalize_account(text: str) -> str:
    """The account number without whitespace, in ASCII digits where it had
    full-width ones. The result may still be malformed."""
    if text.isascii() and text.isdigit():
        return text  # the common case, already clean
    return "".join(text.translate(_ACCOUNT_FOLD).split())


def account_well_formed(digits: str) -> bool:
    """Whether a normalised account number is 10 to 30 ASCII digits."""
    return (
        _ACCOUNT_MIN_DIGITS <= len(digits) <= _ACCOUNT_MAX_DIGITS
        and digits.isascii()
        and digits.isdigit()
    )


def luhn_ok(digits: str) -> bool:
    """Whether ASCII digits pass the Luhn check (the last digit checks)."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    reverse = digits.encode("ascii")[::-1]
    kept = reverse[0::2]
    total = sum(kept) - 48 * len(kept) + sum(reverse[1::2].translate(_LUHN_DOUBLED))
    return total % 10 == 0


# --- Amounts ---------------------------------------------------------------

_AMOUNT_FOLD = str.maketrans(
    {
        **_FULLWIDTH_DIGITS,
        **{ord(wide): chr(ord(wide) - 0xFEE0) for wide in "，．＋－"},
        0x3000: " ",
    }
)
_AMOUNT = re.compile(
    r"([+-]?) *(?:[¥￥] *)?([+-]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?", re.ASCII
)
_MAX_AMOUNT_TEXT = 64
_MAX_YUAN_DIGITS = 10
_FEN = Decimal("0.01")
# A private context, so that no caller's decimal settings can change a result;
# its precision holds any text that passes the length limit exactly.
_DECIMAL = Context(prec=2 * _MAX_AMOUNT_TEXT, rounding=ROUND_HALF_EVEN)
# A float artifact lies within a thousandth of a fen of a whole fen.
_ARTIFACT_TOLERANCE = Decimal("0.00001")


def parse_amount_fen(text: str) -> int | None:
    """The amount in fen, or None if the text is not an amount (see
    AmountGrammar in the module docstring). Zero and negatives parse."""
    stripped = text.strip().translate(_AMOUNT_FOLD)
    if len(stripped) > _MAX_AMOUNT_TEXT:
        return None
    match = _AMOUNT.fullmatch(stripped)
    if match is None:
        return None
    sign_before, sign_after, yuan, decimals = match.groups()
    if sign_before and sign_after:
        return None

    yuan = yuan.replace(",", "").lstrip("0") or "0"
    if len(yuan) > _MAX_YUAN_DIGITS:
        return None

    if decimals is None or len(decimals) <= 2:
        fen = int(yuan) * 100 + int((decimals or "").ljust(2, "0"))
    else:
        value = Decimal(f"{yuan}.{decimals}")
        nearest = value.quantize(_FEN, context=_DECIMAL)
        if _DECIMAL.abs(_DECIMAL.subtract(value, nearest)) >= _ARTIFACT_TOLERANCE:
            return None
        fen = int(nearest.scaleb(2, context=_DECIMAL))

    return -fen if "-" in (sign_before, sign_after) else fen


def format_fen(fen: int) -> str:
    """Fen as yuan with two decimals and no grouping: 123450 -> "1234.50"."""
    sign = "-" if fen < 0 else ""
    yuan, rest = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{rest:02d}"
