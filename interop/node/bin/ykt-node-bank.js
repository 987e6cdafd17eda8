#!/usr/bin/env node
'use strict';
/**
 * Command line of the Node agent bank and vector verifier.
 *
 *   ykt-node-bank bank --gateway HOST:PORT --credentials DIR --crl FILE
 *       [--crl FILE ...] [--ledger FILE] [--max-rounds N] [--proto-dir DIR]
 *   ykt-node-bank verify-vectors [--dir DIR] [--proto-dir DIR]
 *
 * Prints exactly one line of JSON on standard output: the summary, or
 * {"ok": false, ...} with what failed. Exit status: 0 success, 2 a
 * verification failure (an envelope or vector refused or disagreeing),
 * 1 any other failure (gRPC, files), 64 a usage error. Nothing printed
 * carries a name, ID number or account number.
 */

const { parseArgs } = require('node:util');

const { NodeBank } = require('../src/bank');
const { VerificationError } = require('../src/errors');
const { verifyVectors } = require('../src/vectors');

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_VERIFICATION = 2;
const EXIT_USAGE = 64;

function print(summary) {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

async function bank(args) {
  const { values } = parseArgs({
    args,
    options: {
      gateway: { type: 'string' },
      credentials: { type: 'string' },
      crl: { type: 'string', multiple: true },
      ledger: { type: 'string' },
      'max-rounds': { type: 'string', default: '10' },
      'proto-dir': { type: 'string' },
      'timeout-seconds': { type: 'string', default: '30' },
    },
  });
  if (!values.gateway || !values.credentials || !values.crl) {
    throw new UsageError('bank needs --gateway, --credentials and at least one --crl');
  }
  const maxRounds = Number.parseInt(values['max-rounds'], 10);
  const timeoutSeconds = Number.parseInt(values['timeout-seconds'], 10);
  if (!(maxRounds > 0) || !(timeoutSeconds > 0)) {
    throw new UsageError('--max-rounds and --timeout-seconds must be positive');
  }

  const client = new NodeBank({
    target: values.gateway,
    credentials: values.credentials,
    crls: values.crl,
    ledger: values.ledger,
    protoDir: values['proto-dir'],
    timeoutMs: timeoutSeconds * 1000,
  });
  try {
    const summary = await client.run(maxRounds);
    print({ ok: true, ...summary });
  } catch (error) {
    if (error instanceof VerificationError) {
      print({ ok: false, ...client.summary, ...refusal(error) });
      return EXIT_VERIFICATION;
    }
    throw error;
  } finally {
    client.close();
  }
  return EXIT_OK;
}

function vectors(args) {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      'proto-dir': { type: 'string' },
    },
  });
  const summary = verifyVectors({ dir: values.dir, protoDir: values['proto-dir'] });
  print(summary);
  return summary.ok ? EXIT_OK : EXIT_VERIFICATION;
}

class UsageError extends Error {}

function refusal(error) {
  return { error: 'verification', reason: error.reason, message: error.message };
}

/** A gRPC status (its details are safe by the gateway's contract), or a message. */
function failure(error) {
  if (typeof error.code === 'number') {
    return { error: 'grpc', code: error.code, details: error.details };
  }
  return { error: 'failure', message: error.message };
}

async function main(argv) {
  const [mode, ...rest] = argv;
  try {
    if (mode === 'bank') {
      return await bank(rest);
    }
    if (mode === 'verify-vectors') {
      return vectors(rest);
    }
    throw new UsageError('usage: ykt-node-bank bank|verify-vectors [options]');
  } catch (error) {
    if (error instanceof UsageError || error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      print({ ok: false, error: 'usage', message: error.message });
      return EXIT_USAGE;
    }
    if (error instanceof VerificationError) {
      print({ ok: false, ...refusal(error) });
      return EXIT_VERIFICATION;
    }
    print({ ok: false, ...failure(error) });
    return EXIT_FAILURE;
  }
}

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
