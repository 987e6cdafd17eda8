'use strict';
/**
 * The gateway's contract, loaded from the repository's proto/ folder at run
 * time: protobufjs types for the signed payloads (their exact bytes matter)
 * and a @grpc/proto-loader definition for the BankService stub.
 *
 * Invariant: there is no copy of the .proto files here. The Node client reads
 * the same files the Python code is generated from, so the two cannot drift.
 */

const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const DEFAULT_PROTO_DIR = path.resolve(__dirname, '..', '..', '..', 'proto');
const FILES = [
  'ykt/v1/envelope.proto',
  'ykt/v1/batch.proto',
  'ykt/v1/exchange.proto',
  'ykt/v1/services.proto',
];

// How decoded messages are turned into plain objects: 64-bit integers as
// decimal strings (money is integer fen; a JS number would lose precision
// past 2^53), enums by name, absent fields as their defaults.
const OBJECT_OPTIONS = Object.freeze({
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
});

function loadTypes(protoDir = DEFAULT_PROTO_DIR) {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    // protobufjs carries google/protobuf/*.proto itself.
    target.startsWith('google/protobuf/') ? target : path.join(protoDir, target);
  root.loadSync(FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

/** The full payload type name as the envelope carries it. */
function typeName(type) {
  return type.fullName.replace(/^\./, '');
}

function loadBankService(protoDir = DEFAULT_PROTO_DIR) {
  const definition = protoLoader.loadSync(FILES, {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).ykt.v1.BankService;
}

module.exports = {
  DEFAULT_PROTO_DIR,
  OBJECT_OPTIONS,
  loadBankService,
  loadTypes,
  typeName,
};
