'use strict';
/**
 * Checks this implementation against the golden envelope vectors in
 * tests/vectors/envelopes (written by scripts/gen_envelope_vectors.py).
 *
 * For every vector it checks that:
 *   - the serialised SignedEnvelope decodes to the same four fields the
 *     vector lists separately (protobuf interoperability of the envelope);
 *   - PAE(payload_type, payload) is byte for byte the expected PAE;
 *   - opening the envelope as the vector's receiver (expected type,
 *     audience, signer role, trusted CA, CRL, clock) gives the expected
 *     verdict, and for a refusal the expected reason;
 *   - for a valid vector, the signer, subject id and key id are as expected;
 *   - where the vector says its signature is deterministic (Ed25519), signing
 *     the PAE with the vector's TEST-ONLY key reproduces it exactly.
 *
 * A vector this code disagrees with is reported by name; the run fails if
 * any disagrees or if the folder holds no vector at all.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { VerificationError } = require('./errors');
const { openEnvelope, pae, suiteFor } = require('./envelope');
const { TrustStore } = require('./pki');
const { OBJECT_OPTIONS, loadTypes } = require('./proto');

const DEFAULT_VECTOR_DIR = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  'tests',
  'vectors',
  'envelopes',
);

function b64(text) {
  return Buffer.from(text, 'base64');
}

function verdictOf(vector, types, dir) {
  const receiver = vector.receiver;
  const trust = TrustStore.fromFiles(
    path.join(dir, receiver.trusted_ca),
    receiver.crls.map((crl) => path.join(dir, crl)),
  );
  const envelope = {
    payload_type: vector.envelope.payload_type,
    payload: b64(vector.envelope.payload_b64),
    signature: b64(vector.envelope.signature_b64),
    signer_certificate: b64(vector.envelope.signer_certificate_b64),
  };
  try {
    const opened = openEnvelope(envelope, {
      type: types.lookupType(receiver.payload_type),
      trust,
      audience: receiver.audience,
      now: new Date(receiver.verify_at),
      signerRole: receiver.signer_role,
    });
    return {
      verdict: 'valid',
      reason: null,
      signer: opened.signer.uri,
      subject_id: opened.message.header.subject_id,
      key_id: opened.keyId,
    };
  } catch (error) {
    if (error instanceof VerificationError) {
      return { verdict: 'invalid', reason: error.reason, message: error.message };
    }
    throw error;
  }
}

/** Every way this vector and this implementation disagree; empty if none. */
function disagreements(vector, types, dir) {
  const found = [];
  const expected = vector.expected;
  const envelope = vector.envelope;

  const SignedEnvelope = types.lookupType('ykt.v1.SignedEnvelope');
  const decoded = SignedEnvelope.toObject(
    SignedEnvelope.decode(b64(vector.signed_envelope_b64)),
    OBJECT_OPTIONS,
  );
  const sameFields =
    decoded.payload_type === envelope.payload_type &&
    decoded.payload.equals(b64(envelope.payload_b64)) &&
    decoded.signature.equals(b64(envelope.signature_b64)) &&
    decoded.signer_certificate.equals(b64(envelope.signer_certificate_b64));
  if (!sameFields) {
    found.push('the serialised SignedEnvelope does not hold the listed fields');
  }

  const encoded = pae(envelope.payload_type, b64(envelope.payload_b64));
  if (encoded.toString('hex') !== expected.pae_hex) {
    found.push('PAE bytes differ');
  }

  const actual = verdictOf(vector, types, dir);
  if (actual.verdict !== expected.verdict) {
    found.push(`verdict ${actual.verdict} (${actual.message || 'no refusal'})`);
  } else if (actual.verdict === 'invalid' && actual.reason !== expected.reason) {
    found.push(`reason ${actual.reason} (${actual.message})`);
  } else if (actual.verdict === 'valid') {
    for (const field of ['signer', 'subject_id', 'key_id']) {
      if (actual[field] !== expected[field]) {
        found.push(`${field} differs`);
      }
    }
  }

  if (expected.deterministic_signature) {
    const key = crypto.createPrivateKey(
      fs.readFileSync(path.join(dir, vector.signer_key_test_only)),
    );
    const again = suiteFor(key).sign(key, encoded);
    if (!again.equals(b64(envelope.signature_b64))) {
      found.push('re-signing with the vector key gives another signature');
    }
  }
  return { actual, found };
}

function verifyVectors({ dir = DEFAULT_VECTOR_DIR, protoDir } = {}) {
  const types = loadTypes(protoDir);
  const files = fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort();

  const results = [];
  const disagreed = [];
  for (const file of files) {
    const vector = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    const { actual, found } = disagreements(vector, types, dir);
    results.push({
      name: vector.name,
      verdict: actual.verdict,
      reason: actual.reason,
      message: actual.message || null,
    });
    if (found.length > 0) {
      disagreed.push({ name: vector.name, problems: found });
    }
  }

  return {
    mode: 'verify-vectors',
    ok: files.length > 0 && disagreed.length === 0,
    vectors: files.length,
    agreed: files.length - disagreed.length,
    disagreed,
    results,
  };
}

module.exports = { DEFAULT_VECTOR_DIR, verifyVectors };
