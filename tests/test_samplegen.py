"""The generated sample data set: deterministic, well-formed and consistent.

The central test re-derives every record's outcome from the files on disk
(registry, lists, ledgers, policies) with a small reference checker written
here, independently of the generator, and compares it with
``expected-outcomes.csv``. The shared samples are never read.
"""

from __future__ import annotations

import csv
import datetime
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from stdnum.cn import ric

from gateway import samplegen

SCALE = 0.05
BATCHES = (
    "500154-NYNC-CQ-NY-001-2026.xlsx",
    "500110-MZ-CQ-MZ-002-2026-12.csv",
    "500154-NYNC-CQ-NY-001-2026-supplement.csv",
    "500110-WJ-CQ-WJ-004-2026.csv",
    "500154-MZ-CQ-MZ-003-2026-12.csv",
)
# file -> (encoding, header); the .xlsx has its header on row 2.
CSV_FORMATS = {
    "500110-MZ-CQ-MZ-002-2026-12.csv": (
        "gbk",
        "序号,姓名,身份证号,保障人数,月保障金额(元),开户行,银行账号,备注",
    ),
    "500154-NYNC-CQ-NY-001-2026-supplement.csv": (
        "utf-8-sig",
        "序号,姓名,身份证号码,承包面积（亩）,补贴标准（元/亩）,补贴金额（元）,"
        "开户银行,一卡通账号,代领人姓名,代领人身份证号码,备注",
    ),
    "500110-WJ-CQ-WJ-004-2026.csv": (
        "utf-8",
        "序号,姓名,身份证号码,补助金额,开户银行,银行账号",
    ),
    "500154-MZ-CQ-MZ-003-2026-12.csv": (
        "utf-8",
        "序号,姓名,身份证号码,补贴金额（元）,开户银行,一卡通账号",
    ),
}
LISTS = ("deceased", "public-servants", "poverty-registered", "disabled")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samplegen.generate(tmp_path_factory.mktemp("samples"), scale=SCALE)


def read_csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


def read_batch(out: Path, file: str) -> list[dict[str, Any]]:
    """A department file's records as dicts keyed by its own header names."""
    path = out / "batches" / file
    if path.suffix == ".xlsx":
        sheet = openpyxl.load_workbook(path).active
        rows = list(sheet.iter_rows(values_only=True))
        header, records = rows[1], rows[2:-1]
        return [dict(zip(header, row, strict=True)) for row in records]
    return read_csv(path, CSV_FORMATS[file][0])


def field(record: dict[str, Any], *names: str) -> str:
    for name in names:
        if name in record:
            value = record[name]
            return "" if value is None else str(value)
    return ""


def id_valid(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    if ric.calc_check_digit(number) != number[-1]:
        return False
    try:
        datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return True


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


class TestDeterminism:
    def test_same_seed_gives_same_bytes(self, tmp_path: Path) -> None:
        first = samplegen.generate(tmp_path / "a", seed=7, scale=0.02)
        second = samplegen.generate(tmp_path / "b", seed=7, scale=0.02)
        assert files_of(first) == files_of(second)

    def test_other_seed_gives_other_people(self, tmp_path: Path) -> None:
        first = samplegen.generate(tmp_path / "a", seed=7, scale=0.02)
        second = samplegen.generate(tmp_path / "b", seed=8, scale=0.02)
        registry = "registry/accounts.csv"
        assert files_of(first)[registry] != files_of(second)[registry]
        assert files_of(first)["policies.csv"] == files_of(second)["policies.csv"]


class TestLayout:
    def test_writes_every_file_of_the_layout(self, out: Path) -> None:
        banks = [row["bank"] for row in read_csv(out / "banks.csv")]
        expected = [
            "policies.csv",
            "agent-banks.csv",
            "banks.csv",
            "registry/accounts.csv",
            "batches/manifest.csv",
            samplegen.EXPECTED_OUTCOMES,
            *(f"lists/{name}.csv" for name in LISTS),
            *(f"banks/{bank}.csv" for bank in banks),
            *(f"batches/{file}" for file in BATCHES),
        ]
        assert banks == ["CQRCB", "PSBC", "ABC", "ICBC", "CCB", "BOCQ"]
        for name in expected:
            assert (out / name).is_file(), name

    def test_manifest_lists_the_batches_in_order(self, out: Path) -> None:
        manifest = read_csv(out / "batches" / "manifest.csv")
        assert [row["file"] for row in manifest] == list(BATCHES)

    def test_xlsx_has_title_header_text_cells_and_total(self, out: Path) -> None:
        sheet = openpyxl.load_workbook(out / "batches" / BATCHES[0]).active
        rows = list(sheet.iter_rows())
        assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:K1"]
        assert "耕地地力保护补贴" in rows[0][0].value
        assert rows[1][2].value == "身份证号码"
        assert rows[1][7].value == "一卡通账号"
        for row in rows[2:-1]:
            assert row[2].data_type == "s"
            assert row[7].data_type == "s"
        total = rows[-1]
        assert total[0].value == "合计"
        amounts = [r[5].value for r in rows[2:-1] if not isinstance(r[5].value, str)]
        assert total[5].value == pytest.approx(sum(amounts))

    @pytest.mark.parametrize("file", list(CSV_FORMATS))
    def test_csv_reads_in_its_encoding_with_its_header(
        self, out: Path, file: str
    ) -> None:
        encoding, header = CSV_FORMATS[file]
        raw = (out / "batches" / file).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
        text = raw.decode(encoding)
        assert text.splitlines()[0].lstrip("\ufeff") == header
        if encoding == "gbk":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
        assert len(read_batch(out, file)) > 0


class TestIdentifiers:
    def test_registry_ids_have_valid_check_digits_and_dates(self, out: Path) -> None:
        registry = read_csv(out / "registry" / "accounts.csv")
        people = [row["id_number"] for row in registry]
        proxies = [row["proxy_id_number"] for row in registry if row["proxy_id_number"]]
        assert len(set(people)) == len(people)
        for number in people + proxies:
            assert id_valid(number), number
            assert number[:2] in ("50", "51")

    def test_list_ids_are_valid(self, out: Path) -> None:
        for name in LISTS:
            for row in read_csv(out / "lists" / f"{name}.csv"):
                assert id_valid(row["id_number"]), (name, row)

    def test_accounts_use_bank_prefixes_and_luhn(self, out: Path) -> None:
        prefixes = {r["bank"]: r["card_prefix"] for r in read_csv(out / "banks.csv")}
        failing = 0
        for row in read_csv(out / "registry" / "accounts.csv"):
            account = row["account"]
            if row["account_kind"] == "存折":
                assert account.startswith("1")
                assert 18 <= len(account) <= 20
                continue
            assert account.startswith(prefixes[row["bank"]])
            assert len(account) == 19
            failing += not luhn_valid(account)
        # Only the few genuine registered cards that fail Luhn.
        assert 1 <= failing <= 5

    def test_some_old_people_carry_a_code_created_after_birth(self, out: Path) -> None:
        created = {"500154": 2016, "500110": 2011, "500235": 1997}
        registry = read_csv(out / "registry" / "accounts.csv")
        late = [
            row["id_number"]
            for row in registry
            if int(row["id_number"][6:10]) < created.get(row["id_number"][:6], 0)
        ]
        assert late


class TestConsistency:
    def test_registry_accounts_are_in_their_banks_ledgers(self, out: Path) -> None:
        expected = read_csv(out / samplegen.EXPECTED_OUTCOMES)
        mismatched = {
            field(record, "一卡通账号", "银行账号")
            for file in BATCHES
            for record, outcome in zip(
                read_batch(out, file),
                [row for row in expected if row["file"] == file],
                strict=True,
            )
            if outcome["reasons"] == "ACCOUNT_HOLDER_MISMATCH"
        }
        ledgers = {
            bank["bank"]: {
                entry["account"]: entry
                for entry in read_csv(out / "banks" / f"{bank['bank']}.csv")
            }
            for bank in read_csv(out / "banks.csv")
        }
        for row in read_csv(out / "registry" / "accounts.csv"):
            ledger = ledgers[row["bank"]]
            assert row["account"] in ledger
            if row["account"] in mismatched:
                continue
            entry = ledger[row["account"]]
            assert entry["holder_name"] == (row["proxy_name"] or row["name"])
            holder_id = row["proxy_id_number"] or row["id_number"]
            assert entry["holder_id_number"] == holder_id

    def test_expected_outcomes_point_at_existing_rows(self, out: Path) -> None:
        expected = read_csv(out / samplegen.EXPECTED_OUTCOMES)
        for file in BATCHES:
            rows = [int(row["row"]) for row in expected if row["file"] == file]
            assert rows == list(range(1, len(read_batch(out, file)) + 1)), file
        assert {row["file"] for row in expected} == set(BATCHES)
        assert {row["outcome"] for row in expected} == {
            "PAID",
            "REJECTED",
            "FAILED",
            "RETURNED",
        }

    def test_expected_outcomes_follow_from_the_files(self, out: Path) -> None:
        expected = {
            (row["file"], int(row["row"])): (row["outcome"], row["reasons"])
            for row in read_csv(out / samplegen.EXPECTED_OUTCOMES)
        }
        derived = ReferenceChecker(out).run()
        assert derived == expected


class TestPlantedKinds:
    @pytest.mark.parametrize(("scale", "at_least"), [(SCALE, 1), (1.0, 3)])
    def test_every_kind_is_planted(self, scale: float, at_least: int) -> None:
        data = samplegen.build(scale=scale)
        kinds = Counter(r.kind for records in data.batches.values() for r in records)
        for kind in samplegen.KINDS:
            assert kinds[kind] >= at_least, kind

    def test_scale_one_is_a_few_thousand_records(self) -> None:
        data = samplegen.build()
        total = sum(len(records) for records in data.batches.values())
        assert 5000 <= total <= 7000

    def test_every_reason_but_two_is_expected(self, out: Path) -> None:
        expected = read_csv(out / samplegen.EXPECTED_OUTCOMES)
        reasons = {row["reasons"] for row in expected if row["reasons"]}
        assert reasons == {
            "ID_INVALID",
            "AMOUNT_INVALID",
            "AMOUNT_OVER_LIMIT",
            "DUPLICATE_IN_BATCH",
            "DUPLICATE_PAID",
            "DECEASED",
            "NOT_ELIGIBLE",
            "EXCLUDED",
            "ACCOUNT_INVALID",
            "ACCOUNT_NOT_REGISTERED",
            "PROXY_INVALID",
            "ACCOUNT_CLOSED",
            "ACCOUNT_FROZEN",
            "ACCOUNT_HOLDER_MISMATCH",
        }

    def test_proxy_rows_pay_the_registered_proxy(self, out: Path) -> None:
        registry = {
            row["id_number"]: row for row in read_csv(out / "registry" / "accounts.csv")
        }
        paid_to_proxy = [
            record
            for record in read_batch(out, BATCHES[0])
            if field(record, "代领人姓名")
            and registry[field(record, "身份证号码")]["proxy_name"]
            == field(record, "代领人姓名")
        ]
        assert paid_to_proxy

    def test_supplement_repeats_people_of_the_main_file(self, out: Path) -> None:
        main = {field(r, "身份证号码") for r in read_batch(out, BATCHES[0])}
        supplement = [field(r, "身份证号码") for r in read_batch(out, BATCHES[2])]
        assert main & set(supplement)


class ReferenceChecker:
    """Derives each record's outcome from the files, in reason-code priority."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.registry = {
            row["id_number"]: row for row in read_csv(out / "registry" / "accounts.csv")
        }
        self.lists = {
            name: {row["id_number"] for row in read_csv(out / "lists" / f"{name}.csv")}
            for name in LISTS
        }
        self.policies = {
            row["policy_code"]: row for row in read_csv(out / "policies.csv")
        }
        banks = read_csv(out / "banks.csv")
        self.bank_codes = {row["bank_name"]: row["bank"] for row in banks}
        self.prefixes = tuple(row["card_prefix"] for row in banks)
        self.ledgers = {
            row["bank"]: {
                entry["account"]: entry
                for entry in read_csv(out / "banks" / f"{row['bank']}.csv")
            }
            for row in banks
        }
        self.agents = {
            (row["county"], row["policy_code"]): row["agent_bank"]
            for row in read_csv(out / "agent-banks.csv")
        }
        self.claimed: set[tuple[str, str, str]] = set()

    def run(self) -> dict[tuple[str, int], tuple[str, str]]:
        results: dict[tuple[str, int], tuple[str, str]] = {}
        for batch in read_csv(self.out / "batches" / "manifest.csv"):
            seen: set[str] = set()
            for row, record in enumerate(read_batch(self.out, batch["file"]), 1):
                result = self.check(batch, record, seen)
                results[(batch["file"], row)] = result
                if result[0] != "REJECTED":
                    seen.add(field(record, "身份证号码", "身份证号"))
            self.claimed |= {
                (batch["policy_code"], batch["period"], id_number) for id_number in seen
            }
        return results

    def check(
        self, batch: dict[str, str], record: dict[str, Any], seen: set[str]
    ) -> tuple[str, str]:
        reason = self.gateway_reason(batch, record, seen)
        if reason:
            return "REJECTED", reason
        return self.bank_result(batch, record)

    def gateway_reason(
        self, batch: dict[str, str], record: dict[str, Any], seen: set[str]
    ) -> str:
        policy = self.policies[batch["policy_code"]]
        id_number = field(record, "身份证号码", "身份证号")
        amount_text = next(
            field(record, k) for k in record if "金额" in k and "标准" not in k
        )
        account = field(record, "一卡通账号", "银行账号")
        if not id_valid(id_number):
            return "ID_INVALID"
        try:
            amount = Decimal(amount_text)
        except InvalidOperation:
            return "AMOUNT_INVALID"
        if amount <= 0:
            return "AMOUNT_INVALID"
        if amount > Decimal(policy["max_amount_yuan"]):
            return "AMOUNT_OVER_LIMIT"
        if id_number in seen:
            return "DUPLICATE_IN_BATCH"
        if (batch["policy_code"], batch["period"], id_number) in self.claimed:
            return "DUPLICATE_PAID"
        if id_number in self.lists["deceased"]:
            return "DECEASED"
        required, excluded = policy["requires_list"], policy["excludes_list"]
        if required and id_number not in self.lists[required]:
            return "NOT_ELIGIBLE"
        if excluded and id_number in self.lists[excluded]:
            return "EXCLUDED"
        entry = self.registry.get(id_number)
        if entry is None or entry["account"] != account:
            if account.startswith(self.prefixes) and not luhn_valid(account):
                return "ACCOUNT_INVALID"
            return "ACCOUNT_NOT_REGISTERED"
        proxy = (field(record, "代领人姓名"), field(record, "代领人身份证号码"))
        if proxy != (entry["proxy_name"], entry["proxy_id_number"]):
            return "PROXY_INVALID"
        return ""

    def bank_result(
        self, batch: dict[str, str], record: dict[str, Any]
    ) -> tuple[str, str]:
        entry = self.registry[field(record, "身份证号码", "身份证号")]
        bank = self.bank_codes[field(record, "开户银行", "开户行")]
        ledger = self.ledgers[bank].get(field(record, "一卡通账号", "银行账号"))
        holder = (
            entry["proxy_name"] or entry["name"],
            entry["proxy_id_number"] or entry["id_number"],
        )
        if ledger is None:
            return "REJECTED", "ACCOUNT_NOT_FOUND"
        if ledger["status"] == "CLOSED":
            return "REJECTED", "ACCOUNT_CLOSED"
        if ledger["status"] == "FROZEN":
            return "REJECTED", "ACCOUNT_FROZEN"
        if (ledger["holder_name"], ledger["holder_id_number"]) != holder:
            return "REJECTED", "ACCOUNT_HOLDER_MISMATCH"
        if ledger["status_at_payment"] == "FROZEN":
            return "FAILED", "ACCOUNT_FROZEN"
        if ledger["status_at_payment"] == "RETURN_AFTER_PAYMENT":
            assert bank != self.agents[(batch["county"], batch["policy_code"])]
            return "RETURNED", "ACCOUNT_CLOSED"
        return "PAID", ""
