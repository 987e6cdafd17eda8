"""Masking rules and the self-masking personal-data types: named cases, then
properties over every audience and every rendering path."""

from __future__ import annotations

import copy
import json
import pickle
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.masking import (
    DEFAULT_POLICY,
    AccountNumber,
    AccountRule,
    Audience,
    AudienceRules,
    IdNumber,
    IdRule,
    MaskingPolicy,
    NameRule,
    PersonalData,
    PersonName,
    mask_account,
    mask_id_number,
    mask_name,
)
from tests.fakes import make_card, make_id

ID = make_id(random.Random(11), region="500154")
CARD = make_card(random.Random(12))

# Names in the alphabets a normalised name uses: CJK (parts joined by a middle
# dot) and Latin letters (words joined by a space).
_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_LATIN = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzé")
cjk_names = st.lists(st.text(_CJK, min_size=1, max_size=6), min_size=1, max_size=3).map(
    "·".join
)
latin_names = st.lists(
    st.text(_LATIN, min_size=1, max_size=8), min_size=1, max_size=3
).map(" ".join)
names = (cjk_names | latin_names).filter(lambda name: len(name) >= 2)
id_numbers = st.text("0123456789", min_size=17, max_size=17).flatmap(
    lambda body: st.sampled_from([body + c for c in "0123456789X"])
)
any_id_text = id_numbers | st.text("0123456789X", min_size=1, max_size=25)
accounts = st.text("0123456789", min_size=1, max_size=30)
audiences = st.sampled_from(list(Audience))


class TestNames:
    @pytest.mark.parametrize(
        ("name", "masked"),
        [
            ("李四", "李*"),
            ("张小三", "张*三"),
            ("欧阳娜娜", "欧**娜"),
            ("买买提·艾力", "买****力"),
            ("Li Wei", "L****i"),
            ("李", "*"),
            ("", ""),
        ],
    )
    def test_default_rule(self, name: str, masked: str) -> None:
        assert mask_name(name, NameRule()) == masked

    def test_a_rule_that_would_keep_everything_still_hides_one_character(
        self,
    ) -> None:
        greedy = NameRule(keep_first=5, keep_last_from_length=2)
        assert mask_name("李四", greedy) == "李*"
        assert mask_name("张小三", greedy) == "张小*"

    def test_never_keep_the_last_character(self) -> None:
        assert mask_name("张小三", NameRule(keep_last_from_length=0)) == "张**"


class TestIdNumbers:
    def test_keeps_first_six_and_last_four(self) -> None:
        assert mask_id_number(ID, IdRule()) == ID[:6] + "********" + ID[-4:]

    def test_the_public_rule_hides_the_birth_date(self) -> None:
        masked = mask_id_number(ID, DEFAULT_POLICY.public.id_number)
        assert masked[6:14] == "********"
        assert ID[6:14] not in masked

    @pytest.mark.parametrize("text", ["50015419620517123", ID + "1", ID[:15], "X"])
    def test_a_value_of_another_length_is_hidden_entirely(self, text: str) -> None:
        assert mask_id_number(text, IdRule()) == "*" * len(text)

    def test_a_rule_must_hide_eight_characters(self) -> None:
        with pytest.raises(ValueError, match="at least 8"):
            IdRule(keep_first=7, keep_last=4)


class TestAccounts:
    def test_a_card_keeps_first_six_and_last_four(self) -> None:
        hidden = "*" * (len(CARD) - 10)
        assert mask_account(CARD, AccountRule()) == CARD[:6] + hidden + CARD[-4:]

    def test_the_public_sees_only_the_last_four(self) -> None:
        masked = DEFAULT_POLICY.public.mask(AccountNumber(CARD))
        assert masked == "*" * (len(CARD) - 4) + CARD[-4:]

    @pytest.mark.parametrize(
        ("account", "masked"),
        [
            ("1234567890", "******7890"),
            ("123456789012345", "***********2345"),
            ("123456", "***456"),
            ("12", "*2"),
            ("1", "*"),
        ],
    )
    def test_a_short_account_keeps_at_most_half(
        self, account: str, masked: str
    ) -> None:
        assert mask_account(account, AccountRule()) == masked

    def test_a_rule_must_hide_six_digits_of_a_card(self) -> None:
        with pytest.raises(ValueError, match="at least 6"):
            AccountRule(keep_first=8, keep_last=4, full_from_length=16)


class TestPolicy:
    def test_only_auditor_and_finance_may_request_unmasking(self) -> None:
        allowed = {a for a in Audience if DEFAULT_POLICY.rules(a).may_request_unmasking}
        assert allowed == {Audience.AUDITOR, Audience.FINANCE}

    def test_every_audience_sees_masked_values_by_default(self) -> None:
        for audience in Audience:
            rules = DEFAULT_POLICY.rules(audience)
            assert rules.audience is audience
            assert rules.mask(IdNumber(ID)) != ID
            assert rules.mask(AccountNumber(CARD)) != CARD
            assert rules.mask(PersonName("张小三")) == "张*三"

    def test_toml_overrides_one_audience_and_keeps_the_rest(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "gateway.toml"
        path.write_text(
            'listen = "0.0.0.0:7443"\n'
            "[masking.public]\n"
            "id_keep_last = 2\n"
            "name_keep_last_from_length = 0\n"
            "[masking.bank]\n"
            "account_keep_first = 4\n",
            encoding="utf-8",
        )
        policy = MaskingPolicy.from_toml(path)
        assert policy.public.id_number == IdRule(keep_first=6, keep_last=2)
        assert policy.public.mask(PersonName("张小三")) == "张**"
        assert policy.bank.mask(AccountNumber(CARD)).startswith(CARD[:4] + "*")
        assert policy.department == DEFAULT_POLICY.department
        assert policy.auditor.may_request_unmasking

    def test_a_file_without_a_masking_table_gives_the_defaults(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "gateway.toml"
        path.write_text('listen = "0.0.0.0:7443"\n', encoding="utf-8")
        assert MaskingPolicy.from_toml(path) == DEFAULT_POLICY

    @pytest.mark.parametrize(
        ("section", "message"),
        [
            ({"public": {"id_keep_first": 8, "id_keep_last": 0}}, "birth date"),
            ({"public": {"may_request_unmasking": True}}, "never request"),
            ({"visitor": {}}, "unknown audience"),
            ({"bank": {"id_keep": 3}}, "unknown key"),
            ({"bank": {"id_keep_first": "6"}}, "whole number"),
            ({"bank": {"id_keep_first": True}}, "whole number"),
            ({"bank": {"may_request_unmasking": 1}}, "true or false"),
            ({"bank": {"name_keep_first": -1}}, "negative"),
            ({"bank": 3}, "must be a table"),
        ],
    )
    def test_bad_sections_are_refused(
        self, section: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            MaskingPolicy.from_mapping(section)

    def test_rules_cannot_be_filed_under_another_audience(self) -> None:
        with pytest.raises(ValueError, match="another audience"):
            MaskingPolicy(bank=AudienceRules(Audience.PUBLIC))


class TestTypes:
    def test_reveal_is_the_only_way_to_the_plaintext(self) -> None:
        assert IdNumber(ID).dangerously_reveal() == ID

    def test_values_compare_and_hash_by_plaintext_and_type(self) -> None:
        assert IdNumber(ID) == IdNumber(ID)
        assert len({IdNumber(ID), IdNumber(ID)}) == 1
        assert AccountNumber("1234567890") != IdNumber("1234567890")
        assert IdNumber(ID) != ID

    def test_values_are_immutable(self) -> None:
        value = PersonName("张小三")
        with pytest.raises(AttributeError):
            value._plaintext = "李四"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del value._plaintext
        assert value.dangerously_reveal() == "张小三"

    @pytest.mark.parametrize(
        "value", [PersonName("张小三"), IdNumber(ID), AccountNumber(CARD)]
    )
    def test_pickling_is_refused_without_the_plaintext(
        self, value: PersonalData
    ) -> None:
        with pytest.raises(TypeError) as error:
            pickle.dumps(value)
        assert value.dangerously_reveal() not in str(error.value)

    def test_copies_are_the_same_object(self) -> None:
        value = IdNumber(ID)
        assert copy.copy(value) is value
        assert copy.deepcopy({"id": value})["id"] is value

    def test_json_refuses_a_value_without_the_plaintext(self) -> None:
        with pytest.raises(TypeError) as error:
            json.dumps({"id": IdNumber(ID)})
        assert ID not in str(error.value)

    def test_only_text_is_accepted(self) -> None:
        with pytest.raises(TypeError):
            IdNumber(500154196205171234)  # type: ignore[arg-type]

    def test_the_base_type_cannot_be_made(self) -> None:
        with pytest.raises(TypeError):
            PersonalData("x")  # type: ignore[abstract]


def renderings(value: PersonalData) -> list[str]:
    """Every accidental way a value turns into text."""
    return [
        str(value),
        repr(value),
        format(value),
        format(value, ">40"),
        f"{value}",
        f"{value!s}",
        f"{value!r}",
        f"{value:^30}",
        "%s" % value,  # noqa: UP031 -- the %-path is what is under test
        "%r" % (value,),  # noqa: UP031
        "{}".format(value),  # noqa: UP032
        json.dumps({"v": value}, default=str, ensure_ascii=False),
        json.dumps({"v": value}, default=repr, ensure_ascii=False),
        str([value]),
        str({"v": value}),
        str(ValueError(value)),
        repr(ValueError(value)),
    ]


@given(names)
def test_a_name_is_never_masked_to_itself(name: str) -> None:
    for audience in Audience:
        masked = DEFAULT_POLICY.rules(audience).mask(PersonName(name))
        assert masked != name
        assert len(masked) == len(name)


@given(any_id_text)
def test_an_id_number_is_never_masked_to_itself(id_number: str) -> None:
    for audience in Audience:
        masked = DEFAULT_POLICY.rules(audience).mask(IdNumber(id_number))
        assert masked != id_number
        assert masked.count("*") >= min(8, len(id_number))


@given(accounts)
def test_an_account_is_never_masked_to_itself(account: str) -> None:
    for audience in Audience:
        masked = DEFAULT_POLICY.rules(audience).mask(AccountNumber(account))
        assert masked != account
        assert masked.count("*") >= min(6, (len(account) + 1) // 2)


@given(
    st.integers(0, 6),
    st.integers(0, 6),
    st.integers(0, 4),
    names,
    id_numbers,
)
def test_no_valid_configuration_shows_a_plaintext(
    name_first: int, name_last_from: int, id_last: int, name: str, id_number: str
) -> None:
    rules = AudienceRules(
        Audience.PUBLIC,
        name=NameRule(name_first, name_last_from),
        id_number=IdRule(keep_first=6, keep_last=id_last),
    )
    assert rules.mask(PersonName(name)) != name
    assert rules.mask(IdNumber(id_number))[6:14] == "********"


@given(cjk_names.filter(lambda name: len(name) >= 2))
def test_no_rendering_of_a_name_contains_it(name: str) -> None:
    # CJK only: a two-letter Latin name may well occur in "PersonName" itself.
    for text in renderings(PersonName(name)):
        assert name not in text
        assert name[1:] not in text


def test_renderings_of_a_latin_name_show_only_the_mask() -> None:
    texts = renderings(PersonName("Wang Fang"))
    assert all("W*******g" in text for text in texts)
    assert not any("ang" in text or "Fan" in text for text in texts)


@given(id_numbers)
def test_no_rendering_of_an_id_number_contains_it(id_number: str) -> None:
    for text in renderings(IdNumber(id_number)):
        assert id_number not in text
        assert id_number[6:14] not in text


@given(accounts.filter(lambda a: len(a) >= 10))
def test_no_rendering_of_an_account_contains_it(account: str) -> None:
    for text in renderings(AccountNumber(account)):
        assert account not in text
