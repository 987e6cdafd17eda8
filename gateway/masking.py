"""Personal-data values that mask themselves, and the masking rules per audience.

Personal data here is a beneficiary's (or a proxy's) name, ID number and
account number. Inside the gateway such a value travels as a ``PersonName``,
``IdNumber`` or ``AccountNumber``: a small immutable wrapper whose every
*accidental* rendering is masked.

Invariants:
  * ``str()``, ``repr()``, ``format()``, f-strings (with or without ``!s``,
    ``!r`` or a format spec) and ``%``-formatting of a wrapper give the masked
    form under the *public* default rules, the strictest; nothing but
    ``dangerously_reveal()`` returns the plaintext. ``json.dumps`` refuses a
    wrapper (``TypeError`` naming only the type), and with ``default=str`` it
    writes the masked form.
  * A wrapper cannot be pickled (``TypeError``): a pickle would carry the
    plaintext into a cache, a queue or a crash dump. ``copy.copy`` and
    ``copy.deepcopy`` return the same, immutable object.
  * Masking never returns the plaintext: a name of two or more characters
    always loses at least one character, an ID number at least eight (every
    ID number that is not 18 characters loses all of them), a card at least
    6 digits, and a shorter account number at least half of its digits. Each
    hidden character becomes one ``*``.
  * The public audience's rules never show the birth date of an 18-character
    ID number (characters 7 to 14): ``AudienceRules`` refuses a public rule
    that would, and a public audience may never request unmasking.

Threats:
  * A value pasted into a log line, an exception message, a metric label or a
    gRPC error detail. The wrappers make the careless path safe; the log guard
    in ``gateway.logs`` is a second net behind them.
  * Re-identification from a published notice: the public rules keep only what
    lets a beneficiary recognise their own row.
  * Deliberate access is NOT prevented: Python has no private attributes, and
    code that calls ``dangerously_reveal()`` (or digs into the slots) gets the
    plaintext. Grep for ``dangerously_reveal`` to review every such place.

JR/T 0171-2020 (personal financial information protection) asks for masked
display; the defaults keep what Chinese banks commonly keep: a name its first
character, and its last when it has three or more; an ID number its first 6
and last 4 characters; a bank card its first 6 and last 4 digits. Which
audience sees what, and the TOML section that overrides the defaults, are
described in ``MaskingPolicy`` and ``docs/personal-data.md``.
"""

from __future__ import annotations

import abc
import enum
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, Self, final

MASK = "*"

ID_NUMBER_LENGTH = 18
# Characters 7 to 14 of an 18-character ID number are the birth date
# (YYYYMMDD); a rule that keeps at most the first 6 and the last 4 hides it.
_BIRTH_DATE_START = 6
_BIRTH_DATE_END = 14


# --- Rules -----------------------------------------------------------------


def _require_count(key: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{key} must not be negative")


@dataclass(frozen=True)
class NameRule:
    """Keep the first ``keep_first`` characters, and the last character when
    the name has at least ``keep_last_from_length`` characters (0: never).

    At least one character of a name is always hidden: a rule that would keep
    them all keeps fewer (the last one is dropped first).
    """

    keep_first: int = 1
    keep_last_from_length: int = 3

    def __post_init__(self) -> None:
        _require_count("name_keep_first", self.keep_first)
        _require_count("name_keep_last_from_length", self.keep_last_from_length)


@dataclass(frozen=True)
class IdRule:
    """Keep the first ``keep_first`` and the last ``keep_last`` characters of
    an 18-character ID number. A value of any other length is malformed and is
    hidden entirely."""

    keep_first: int = 6
    keep_last: int = 4

    def __post_init__(self) -> None:
        _require_count("id_keep_first", self.keep_first)
        _require_count("id_keep_last", self.keep_last)
        if self.keep_first + self.keep_last > ID_NUMBER_LENGTH - 8:
            raise ValueError("an ID number rule must hide at least 8 characters")

    @property
    def hides_birth_date(self) -> bool:
        return (
            self.keep_first <= _BIRTH_DATE_START
            and self.keep_last <= ID_NUMBER_LENGTH - _BIRTH_DATE_END
        )


@dataclass(frozen=True)
class AccountRule:
    """Keep the first ``keep_first`` and the last ``keep_last`` digits of an
    account number of at least ``full_from_length`` digits (a bank card).

    A shorter account (a passbook, or a malformed number) keeps no leading
    digits and at most ``keep_last`` trailing ones, never more than half: a
    10-digit passbook shows its last 4, a 6-digit value its last 3.
    """

    keep_first: int = 6
    keep_last: int = 4
    full_from_length: int = 16

    def __post_init__(self) -> None:
        _require_count("account_keep_first", self.keep_first)
        _require_count("account_keep_last", self.keep_last)
        _require_count("account_full_from_length", self.full_from_length)
        if self.keep_first + self.keep_last + 6 > self.full_from_length:
            raise ValueError("an account rule must hide at least 6 digits of a card")


class Audience(enum.StrEnum):
    """Who looks at a value."""

    BANK = "bank"
    DEPARTMENT = "department"
    AUDITOR = "auditor"
    FINANCE = "finance"
    PUBLIC = "public"


@dataclass(frozen=True)
class AudienceRules:
    """The rules one audience sees values under.

    ``may_request_unmasking`` says only whether holders of this audience's role
    may be granted the separate permission to see plaintext; this module does
    not grant or enforce it.
    """

    audience: Audience
    name: NameRule = NameRule()
    id_number: IdRule = IdRule()
    account: AccountRule = AccountRule()
    may_request_unmasking: bool = False

    def __post_init__(self) -> None:
        if self.audience is Audience.PUBLIC:
            if not self.id_number.hides_birth_date:
                raise ValueError(
                    "the public rule must hide characters 7 to 14 (the birth date)"
                    " of an ID number: keep at most the first 6 and the last 4"
                )
            if self.may_request_unmasking:
                raise ValueError("the public audience may never request unmasking")

    def mask(self, value: PersonalData) -> str:
        """The masked form of ``value`` for this audience."""
        return value.masked(self)


@dataclass(frozen=True)
class MaskingPolicy:
    """The rules of every audience.

    Defaults: every audience sees names as ``张*三``/``李*`` and ID numbers as
    ``500154********1234``. Banks, departments, auditors and finance see a card
    as ``621459******1234``; the public sees only ``************1234``. Auditors
    and finance may be granted unmasking; nobody else may.

    TOML (``MaskingPolicy.from_toml``): a ``[masking.<audience>]`` table per
    audience to change, each key optional, unknown keys refused::

        [masking.public]
        name_keep_first = 1
        name_keep_last_from_length = 3   # 0: never keep the last character
        id_keep_first = 6                # public: at most 6
        id_keep_last = 4                 # public: at most 4
        account_keep_first = 0
        account_keep_last = 4
        account_full_from_length = 16
        may_request_unmasking = false    # public: always false
    """

    bank: AudienceRules = AudienceRules(Audience.BANK)
    department: AudienceRules = AudienceRules(Audience.DEPARTMENT)
    auditor: AudienceRules = AudienceRules(Audience.AUDITOR, may_request_unmasking=True)
    finance: AudienceRules = AudienceRules(Audience.FINANCE, may_request_unmasking=True)
    public: AudienceRules = AudienceRules(
        Audience.PUBLIC, account=AccountRule(keep_first=0, keep_last=4)
    )

    def __post_init__(self) -> None:
        for audience in Audience:
            if getattr(self, audience.value).audience is not audience:
                raise ValueError(
                    f"the rules for {audience.value} name another audience"
                )

    def rules(self, audience: Audience) -> AudienceRules:
        found: AudienceRules = getattr(self, audience.value)
        return found

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> MaskingPolicy:
        """The default policy, changed by a parsed ``[masking]`` TOML table."""
        default = cls()
        changed: dict[str, AudienceRules] = {}
        for key, table in section.items():
            try:
                audience = Audience(key)
            except ValueError:
                raise ValueError(f"[masking.{key}]: unknown audience") from None
            if not isinstance(table, Mapping):
                raise ValueError(f"[masking.{key}] must be a table")
            changed[audience.value] = _override(default.rules(audience), table)
        return replace(default, **changed)

    @classmethod
    def from_toml(cls, path: Path) -> MaskingPolicy:
        """The policy of a TOML file's ``[masking]`` table (defaults if absent)."""
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        section = data.get("masking", {})
        if not isinstance(section, Mapping):
            raise ValueError("[masking] must be a table")
        return cls.from_mapping(section)


DEFAULT_POLICY = MaskingPolicy()

# How a value describes itself in str(), repr() and format(): the strictest
# default rules, because such text may end up anywhere.
_SELF_DESCRIPTION = DEFAULT_POLICY.public


# TOML key -> (part of AudienceRules, field of that part's rule).
_TOML_KEYS = {
    "name_keep_first": ("name", "keep_first"),
    "name_keep_last_from_length": ("name", "keep_last_from_length"),
    "id_keep_first": ("id_number", "keep_first"),
    "id_keep_last": ("id_number", "keep_last"),
    "account_keep_first": ("account", "keep_first"),
    "account_keep_last": ("account", "keep_last"),
    "account_full_from_length": ("account", "full_from_length"),
}


def _override(rules: AudienceRules, table: Mapping[str, Any]) -> AudienceRules:
    where = f"[masking.{rules.audience.value}]"
    unmasking = rules.may_request_unmasking
    changes: dict[str, dict[str, int]] = {"name": {}, "id_number": {}, "account": {}}

    for key, value in table.items():
        if key == "may_request_unmasking":
            if not isinstance(value, bool):
                raise ValueError(f"{where} {key} must be true or false")
            unmasking = value
        elif key in _TOML_KEYS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{where} {key} must be a whole number")
            part, field = _TOML_KEYS[key]
            changes[part][field] = value
        else:
            raise ValueError(f"{where} {key}: unknown key")

    # All keys of a rule change together, so no order of keys is refused for
    # passing through an invalid rule on its way to a valid one.
    try:
        return AudienceRules(
            rules.audience,
            name=replace(rules.name, **changes["name"]),
            id_number=replace(rules.id_number, **changes["id_number"]),
            account=replace(rules.account, **changes["account"]),
            may_request_unmasking=unmasking,
        )
    except ValueError as error:
        raise ValueError(f"{where} {error}") from None


# --- Masking plain text ----------------------------------------------------


def mask_name(text: str, rule: NameRule) -> str:
    """A name with all but its kept characters replaced by ``*``.

    A compound name is masked as one run of characters, middle dot included
    (``买买提·艾力`` -> ``买****力``), so that the mask does not show where
    the parts split.
    """
    length = len(text)
    keep_last = 1 if 0 < rule.keep_last_from_length <= length else 0
    keep_first = min(rule.keep_first, length)

    # Always hide at least one character: drop the last kept one first.
    if keep_first + keep_last >= length:
        keep_last = 0
        keep_first = min(keep_first, length - 1)

    return _keep(text, max(keep_first, 0), keep_last)


def mask_id_number(text: str, rule: IdRule) -> str:
    """An ID number with all but its kept characters replaced by ``*``; a
    value that is not 18 characters is hidden entirely."""
    if len(text) != ID_NUMBER_LENGTH:
        return MASK * len(text)
    return _keep(text, rule.keep_first, rule.keep_last)


def mask_account(text: str, rule: AccountRule) -> str:
    """An account number with all but its kept digits replaced by ``*`` (see
    ``AccountRule`` for short accounts)."""
    length = len(text)
    if length >= rule.full_from_length:
        return _keep(text, rule.keep_first, rule.keep_last)
    return _keep(text, 0, min(rule.keep_last, length // 2))


def _keep(text: str, first: int, last: int) -> str:
    hidden = len(text) - first - last
    return text[:first] + MASK * hidden + text[len(text) - last :]


# --- Values that mask themselves -------------------------------------------


class PersonalData(abc.ABC):
    """A personal-data value: masked whenever it is shown, plaintext only on
    ``dangerously_reveal()``. Immutable, comparable, hashable, not picklable."""

    __slots__ = ("_plaintext",)
    _plaintext: str

    def __init__(self, plaintext: str) -> None:
        if not isinstance(plaintext, str):
            raise TypeError(f"{type(self).__name__} takes a str")
        object.__setattr__(self, "_plaintext", plaintext)

    def dangerously_reveal(self) -> str:
        """The PLAINTEXT. Only for sealing, matching, or a permitted viewer;
        never for logs, errors, metrics or a public file."""
        return self._plaintext

    @abc.abstractmethod
    def masked(self, rules: AudienceRules) -> str:
        """The masked form for an audience's rules."""

    def __str__(self) -> str:
        return self.masked(_SELF_DESCRIPTION)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.masked(_SELF_DESCRIPTION)!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PersonalData) or type(other) is not type(self):
            return NotImplemented
        return self._plaintext == other._plaintext

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._plaintext))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is personal data and is not pickled")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: object) -> Self:
        return self


@final
class PersonName(PersonalData):
    """A person's name (normalised as ``gateway.normalize.normalize_name``)."""

    __slots__ = ()

    def masked(self, rules: AudienceRules) -> str:
        return mask_name(self._plaintext, rules.name)


@final
class IdNumber(PersonalData):
    """An ID number (GB 11643, normalised to 18 characters)."""

    __slots__ = ()

    def masked(self, rules: AudienceRules) -> str:
        return mask_id_number(self._plaintext, rules.id_number)


@final
class AccountNumber(PersonalData):
    """A one-card account number: a card or passbook, ASCII digits."""

    __slots__ = ()

    def masked(self, rules: AudienceRules) -> str:
        return mask_account(self._plaintext, rules.account)
