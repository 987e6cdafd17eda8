'use strict';
/**
 * An agent bank in Node: pulls signed sets from the gateway, verifies them,
 * answers account checks, "pays" instructions and posts signed results. It
 * does what connectors/grpc_pull.py does for a Python bank, in another
 * language, to show the contract is implementable from proto/ and the
 * envelope rules alone.
 *
 * One round:
 *   1. PullAccountChecks; verify each AccountCheckSet (signed by the gateway,
 *      addressed to this bank, for this bank's code); answer each check from
 *      the ledger; post one signed AccountCheckResultSet ("<set>.answer");
 *      acknowledge the set.
 *   2. PullInstructions; verify each InstructionSet the same way; "pay" each
 *      instruction once; acknowledge the set; post one signed ResultSet
 *      ("<set>.results").
 * Rounds repeat until one moves nothing, or `maxRounds` is reached.
 *
 * Invariants:
 * - A set is verified before anything in it is read or acted on. A set that
 *   fails verification is neither answered nor acknowledged: the run stops
 *   at once with a VerificationError, and the gateway redelivers the set
 *   after its lease, for an operator to look at.
 * - Everything this client sends is signed with the bank's signing key,
 *   never its TLS key, and carries a header like the Python runner's.
 * - Amounts are integer fen, handled as BigInt; nothing becomes a float.
 * - Names, ID numbers and account numbers are never printed or logged: the
 *   summary counts, and names sets by id.
 *
 * DANGER, not a real core: "paying" here decides an outcome from the ledger
 * file and moves no money. It pays an instruction id once per run only; a
 * real bank's core must record every instruction id durably and answer a
 * redelivered id with the recorded outcome, so that nothing is paid twice
 * across runs. This client keeps no state between runs by design.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const grpc = require('@grpc/grpc-js');

const { loadSigner, openEnvelope, seal, timestampOf } = require('./envelope');
const { VerificationError } = require('./errors');
const { TrustStore } = require('./pki');
const { loadBankService, loadTypes } = require('./proto');

const GATEWAY_AUDIENCE = 'gateway';
const GATEWAY_ROLE = 'gateway';
const MAX_SETS = 5;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const CHECK_BY_LEDGER_STATUS = Object.freeze({
  NORMAL: 'ACCOUNT_CHECK_STATUS_CONFIRMED',
  CLOSED: 'ACCOUNT_CHECK_STATUS_CLOSED',
  FROZEN: 'ACCOUNT_CHECK_STATUS_FROZEN',
});
const FAILURE_BY_LEDGER_STATUS = Object.freeze({
  CLOSED: 'ACCOUNT_CLOSED',
  FROZEN: 'ACCOUNT_FROZEN',
});

/**
 * The bank's view of its accounts. Without a ledger file every account is
 * confirmed and paid. A ledger file is JSON:
 *   {"accounts": {"<account number>": {"status": "NORMAL" | "CLOSED" |
 *     "FROZEN", "status_at_payment": (same, optional), "holder_name":
 *     (optional), "holder_id_number": (optional)}}}
 * An account absent from a given ledger is NOT_FOUND.
 */
class Ledger {
  constructor(accounts) {
    this.accounts = accounts;
  }

  static load(ledgerPath) {
    if (!ledgerPath) {
      return new Ledger(null);
    }
    const data = JSON.parse(fs.readFileSync(ledgerPath, 'utf8'));
    if (!data || typeof data.accounts !== 'object') {
      throw new Error('the ledger file must hold an "accounts" object');
    }
    return new Ledger(new Map(Object.entries(data.accounts)));
  }

  check(check) {
    if (this.accounts === null) {
      return 'ACCOUNT_CHECK_STATUS_CONFIRMED';
    }
    const account = this.accounts.get(check.account_number);
    if (account === undefined) {
      return 'ACCOUNT_CHECK_STATUS_NOT_FOUND';
    }
    const status = CHECK_BY_LEDGER_STATUS[account.status];
    if (status === undefined) {
      throw new Error('the ledger holds an account with an unknown status');
    }
    const nameDiffers =
      account.holder_name !== undefined && account.holder_name !== check.holder_name;
    const idDiffers =
      account.holder_id_number !== undefined &&
      account.holder_id_number !== check.holder_id_number;
    if (status === 'ACCOUNT_CHECK_STATUS_CONFIRMED' && (nameDiffers || idDiffers)) {
      return 'ACCOUNT_CHECK_STATUS_HOLDER_MISMATCH';
    }
    return status;
  }

  /** The outcome of paying one instruction: [status, reason code]. */
  pay(instruction) {
    if (this.accounts === null) {
      return ['RESULT_STATUS_PAID', ''];
    }
    const account = this.accounts.get(instruction.account_number);
    if (account === undefined) {
      return ['RESULT_STATUS_FAILED', 'ACCOUNT_NOT_FOUND'];
    }
    const status = account.status_at_payment || account.status;
    const failure = FAILURE_BY_LEDGER_STATUS[status];
    return failure ? ['RESULT_STATUS_FAILED', failure] : ['RESULT_STATUS_PAID', ''];
  }
}

/** A unary call as a promise, with a deadline. */
function call(client, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    client[method](request, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function bankReference(bankCode, now) {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `${bankCode}${day}${crypto.randomBytes(5).toString('hex').toUpperCase()}`;
}

class NodeBank {
  /**
   * @param options.target host:port of the gateway
   * @param options.credentials folder with cert.pem, key.pem, ca.pem,
   *   signing.pem and signing-key.pem
   * @param options.crls CRL files for the CA bundle (required: without a
   *   current CRL no signer is trusted)
   * @param options.ledger optional ledger file (see Ledger)
   */
  constructor(options) {
    const dir = options.credentials;
    this.types = loadTypes(options.protoDir);
    this.signer = loadSigner(
      path.join(dir, 'signing.pem'),
      path.join(dir, 'signing-key.pem'),
    );
    if (this.signer.identity.role !== 'bank') {
      throw new Error('the signing certificate is not a bank certificate');
    }
    this.bankCode = this.signer.identity.org;
    this.trust = TrustStore.fromFiles(path.join(dir, 'ca.pem'), options.crls);
    this.ledger = Ledger.load(options.ledger);
    this.timeoutMs = options.timeoutMs || 30000;
    this.clock = options.clock || (() => new Date());

    const BankService = loadBankService(options.protoDir);
    this.client = new BankService(
      options.target,
      grpc.credentials.createSsl(
        fs.readFileSync(path.join(dir, 'ca.pem')),
        fs.readFileSync(path.join(dir, 'key.pem')),
        fs.readFileSync(path.join(dir, 'cert.pem')),
      ),
      {
        'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
        'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      },
    );
    this.paidIds = new Map();
    this.summary = {
      mode: 'bank',
      bank: this.bankCode,
      signing_suite: this.signer.suite,
      rounds: 0,
      check_sets: 0,
      checks: {},
      instruction_sets: 0,
      instructions: 0,
      paid: 0,
      failed: 0,
      paid_fen: '0',
      receipts: [],
    };
  }

  close() {
    this.client.close();
  }

  async run(maxRounds) {
    for (let round = 0; round < maxRounds; round += 1) {
      this.summary.rounds += 1;
      const moved = (await this.answerChecks()) + (await this.payInstructions());
      if (moved === 0) {
        break;
      }
    }
    return this.summary;
  }

  /** Verify one leased set as this bank receives it, and check its bank code. */
  openSet(leased, typeName) {
    const opened = openEnvelope(leased.set, {
      type: this.types.lookupType(typeName),
      trust: this.trust,
      audience: this.bankCode,
      now: this.clock(),
      signerRole: GATEWAY_ROLE,
    });
    if (opened.message.bank_code !== this.bankCode) {
      throw new VerificationError('header', 'a set for this bank names another bank');
    }
    return opened.message;
  }

  seal(typeName, fields, subjectId) {
    return seal(this.signer, this.types.lookupType(typeName), fields, {
      audience: GATEWAY_AUDIENCE,
      subjectId,
      now: this.clock(),
    });
  }

  async answerChecks() {
    const response = await call(
      this.client,
      'PullAccountChecks',
      { max_sets: MAX_SETS },
      this.timeoutMs,
    );
    const sets = response.sets.map((leased) => ({
      leaseId: leased.lease_id,
      message: this.openSet(leased, 'ykt.v1.AccountCheckSet'),
    }));

    for (const { leaseId, message } of sets) {
      const setId = message.header.subject_id;
      const results = message.checks.map((check) => {
        const status = this.ledger.check(check);
        this.summary.checks[status] = (this.summary.checks[status] || 0) + 1;
        return { check_id: check.check_id, status };
      });

      const envelope = this.seal(
        'ykt.v1.AccountCheckResultSet',
        { check_set_id: setId, results },
        `${setId}.answer`,
      );
      const posted = await call(
        this.client,
        'PostAccountCheckResults',
        { result_set: envelope },
        this.timeoutMs,
      );
      this.recordReceipt(posted.receipt);

      await call(
        this.client,
        'Acknowledge',
        { set_id: setId, lease_id: leaseId },
        this.timeoutMs,
      );
      this.summary.check_sets += 1;
    }
    return sets.length;
  }

  async payInstructions() {
    const response = await call(
      this.client,
      'PullInstructions',
      { max_sets: MAX_SETS },
      this.timeoutMs,
    );
    const sets = response.sets.map((leased) => ({
      leaseId: leased.lease_id,
      message: this.openSet(leased, 'ykt.v1.InstructionSet'),
    }));

    for (const { leaseId, message } of sets) {
      const setId = message.header.subject_id;
      const results = message.instructions.map((instruction) => this.pay(instruction));

      await call(
        this.client,
        'Acknowledge',
        { set_id: setId, lease_id: leaseId },
        this.timeoutMs,
      );

      const envelope = this.seal('ykt.v1.ResultSet', { results }, `${setId}.results`);
      const posted = await call(
        this.client,
        'PostResults',
        { result_set: envelope },
        this.timeoutMs,
      );
      this.recordReceipt(posted.receipt);
      this.summary.instruction_sets += 1;
    }
    return sets.length;
  }

  /** Decide one instruction's outcome, once per instruction id in this run. */
  pay(instruction) {
    const known = this.paidIds.get(instruction.instruction_id);
    if (known !== undefined) {
      return known;
    }

    const now = this.clock();
    const [status, reasonCode] = this.ledger.pay(instruction);
    const result = {
      instruction_id: instruction.instruction_id,
      status,
      reason_code: reasonCode,
      bank_reference: bankReference(this.bankCode, now),
      completed_at: timestampOf(now.getTime()),
    };
    this.paidIds.set(instruction.instruction_id, result);

    this.summary.instructions += 1;
    if (status === 'RESULT_STATUS_PAID') {
      this.summary.paid += 1;
      this.summary.paid_fen = String(
        BigInt(this.summary.paid_fen) + BigInt(instruction.amount_fen),
      );
    } else {
      this.summary.failed += 1;
    }
    return result;
  }

  recordReceipt(receipt) {
    this.summary.receipts.push({
      set_id: receipt.set_id,
      accepted: receipt.accepted,
      duplicates: receipt.duplicates,
    });
  }
}

module.exports = { Ledger, NodeBank };
