'use strict';
/**
 * Signed envelopes in Node: the same format and the same order of checks as
 * the gateway's gateway/envelope.py, written from the format, not translated.
 *
 * The signature covers the pre-authentication encoding (PAE)
 *
 *   "YKTv1" SP len(type) SP type SP len(payload) SP payload
 *
 * where SP is one 0x20 byte, type is the UTF-8 payload type name and len()
 * is a byte length written in ASCII decimal, so no (type, payload) pair can
 * pass for another.
 *
 * Opening an envelope, in order (nothing is parsed before step 4):
 *   1. the payload type is the one the receiver expects;
 *   2. the signer certificate is trusted for signing (pki.js);
 *   3. the signature verifies over PAE(type, payload) with the one suite the
 *      certificate's key fixes: ECDSA P-256 with SHA-256 and a DER-encoded
 *      signature, or Ed25519; any other key is refused;
 *   4. the payload bytes are parsed;
 *   5. the header's key id is "sha256:" + hex SHA-256 of the certificate DER,
 *      its sender is the certificate's organisation, its audience is the
 *      receiver, it has a subject id, its window is positive and at most
 *      7 days, it was not created more than 5 minutes in the future, and the
 *      receiver's clock is before its expiry.
 *
 * Threats answered: tampering (3), a payload relabelled as another type
 * (1, and PAE in 3), a TLS, revoked, expired or foreign-CA key (2), an
 * algorithm downgrade (3: the key decides, the message cannot), content
 * replayed to another receiver (5, audience) or after its window (5).
 */

const crypto = require('node:crypto');
const fs = require('node:fs');

const { VerificationError } = require('./errors');
const { DOCUMENT_SIGNING, identityOf } = require('./pki');
const { OBJECT_OPTIONS, typeName } = require('./proto');

const PAE_PREFIX = Buffer.from('YKTv1', 'ascii');
const SP = Buffer.from(' ', 'ascii');
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const MAX_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;
const DEFAULT_VALIDITY_MS = 24 * 60 * 60 * 1000;

/** The exact bytes that are signed. */
function pae(payloadType, payload) {
  const kind = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    PAE_PREFIX,
    SP,
    Buffer.from(String(kind.length), 'ascii'),
    SP,
    kind,
    SP,
    Buffer.from(String(payload.length), 'ascii'),
    SP,
    Buffer.from(payload),
  ]);
}

/** The header key id of a certificate: "sha256:" and hex SHA-256 of its DER. */
function keyId(certDer) {
  return `sha256:${crypto.createHash('sha256').update(certDer).digest('hex')}`;
}

class UnsupportedKeyError extends Error {}

const ECDSA_P256_SHA256 = Object.freeze({
  name: 'ecdsa-p256-sha256',
  sign: (key, data) => crypto.sign('sha256', data, { key, dsaEncoding: 'der' }),
  verify: (key, data, signature) =>
    crypto.verify('sha256', data, { key, dsaEncoding: 'der' }, signature),
});

const ED25519 = Object.freeze({
  name: 'ed25519',
  sign: (key, data) => crypto.sign(null, data, key),
  verify: (key, data, signature) => crypto.verify(null, data, key, signature),
});

/** The one suite a key (public or private KeyObject) may be used with. */
function suiteFor(key) {
  if (key.asymmetricKeyType === 'ec') {
    if (key.asymmetricKeyDetails.namedCurve === 'prime256v1') {
      return ECDSA_P256_SHA256;
    }
    throw new UnsupportedKeyError('only the P-256 curve is accepted');
  }
  if (key.asymmetricKeyType === 'ed25519') {
    return ED25519;
  }
  // TODO: an SM2-with-SM3 suite goes here when the gateway registers one in
  // keys/signing.py; the envelope format does not change.
  throw new UnsupportedKeyError('no signature suite for this key type');
}

function timestampMs(timestamp) {
  if (!timestamp) {
    return 0;
  }
  const millis = BigInt(timestamp.seconds) * 1000n + BigInt(timestamp.nanos) / 1000000n;
  return Number(millis);
}

function timestampOf(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1000000 };
}

/**
 * Verify, then parse. Returns { signer, keyId, payload, message } or throws
 * VerificationError.
 *
 * @param envelope {payload_type, payload, signature, signer_certificate}
 * @param options.type the protobufjs Type the receiver expects
 * @param options.trust a pki.TrustStore
 * @param options.audience the receiver's organisation code
 * @param options.now the receiver's clock, a Date
 * @param options.signerRole if given, the role the signer must have
 */
function openEnvelope(envelope, { type, trust, audience, now, signerRole }) {
  const expectedType = typeName(type);
  const payload = Buffer.from(envelope.payload || []);
  const signerDer = Buffer.from(envelope.signer_certificate || []);

  // 1. The payload type is the one we expect.
  if (envelope.payload_type !== expectedType) {
    throw new VerificationError('payload-type', `payload type must be ${expectedType}`);
  }

  // 2. The signer's certificate is trusted for signing.
  const signer = trust.verifySigner(signerDer, now);
  if (signerRole !== undefined && signer.role !== signerRole) {
    throw new VerificationError('signer', `the signer must be a ${signerRole}`);
  }

  // 3. The signature verifies with the suite the key fixes.
  let verified = false;
  try {
    verified = suiteFor(signer.x509.publicKey).verify(
      signer.x509.publicKey,
      pae(envelope.payload_type, payload),
      Buffer.from(envelope.signature || []),
    );
  } catch {
    // An unsupported key, or a signature too malformed to read: refuse.
    verified = false;
  }
  if (!verified) {
    throw new VerificationError('signature', 'envelope signature does not verify');
  }

  // 4. Parse only the verified bytes.
  let message;
  try {
    message = type.toObject(type.decode(payload), OBJECT_OPTIONS);
  } catch {
    throw new VerificationError('payload', 'payload does not parse');
  }

  // 5. The header binds key, sender, audience and validity window.
  const header = message.header;
  const expectedKeyId = keyId(signerDer);
  if (!header || header.key_id !== expectedKeyId) {
    throw new VerificationError(
      'header',
      'header key id does not name the signing certificate',
    );
  }
  if (header.sender !== signer.org) {
    throw new VerificationError(
      'header',
      "header sender is not the signer's organisation",
    );
  }
  if (header.audience !== audience) {
    throw new VerificationError('header', 'envelope is addressed to another receiver');
  }
  if (!header.subject_id) {
    throw new VerificationError('header', 'header lacks a subject id');
  }
  const created = timestampMs(header.created_at);
  const expires = timestampMs(header.expires_at);
  if (expires <= created || expires - created > MAX_VALIDITY_MS) {
    throw new VerificationError('header', 'header validity window is not acceptable');
  }
  if (created > now.getTime() + CLOCK_SKEW_MS) {
    throw new VerificationError('header', 'envelope was created in the future');
  }
  if (now.getTime() >= expires) {
    throw new VerificationError('expired', 'envelope has expired');
  }

  return {
    signer: { role: signer.role, org: signer.org, uri: signer.uri },
    keyId: expectedKeyId,
    payload,
    message,
  };
}

/**
 * A signing certificate with its private key, loaded from PEM files. Refuses
 * a key that does not match the certificate, and a certificate that is not
 * for document signing (a TLS key must never sign content).
 */
function loadSigner(certPath, keyPath) {
  const x509 = new crypto.X509Certificate(fs.readFileSync(certPath));
  const key = crypto.createPrivateKey(fs.readFileSync(keyPath));
  if (!x509.checkPrivateKey(key)) {
    throw new Error('the signing key does not match the signing certificate');
  }
  const usages = x509.keyUsage || [];
  if (!usages.includes(DOCUMENT_SIGNING)) {
    throw new Error('the signing certificate lacks the document-signing purpose');
  }
  const suite = suiteFor(key);
  return {
    certDer: x509.raw,
    identity: identityOf(x509),
    keyId: keyId(x509.raw),
    suite: suite.name,
    sign: (data) => suite.sign(key, data),
  };
}

/**
 * Fill the header, encode the message once and sign exactly those bytes.
 * `fields` are the message's fields other than its header.
 */
function seal(signer, type, fields, { audience, subjectId, now, validityMs }) {
  const created = now.getTime();
  const header = {
    sender: signer.identity.org,
    audience,
    subject_id: subjectId,
    created_at: timestampOf(created),
    expires_at: timestampOf(created + (validityMs || DEFAULT_VALIDITY_MS)),
    key_id: signer.keyId,
  };

  const message = type.fromObject({ ...fields, header });
  const problem = type.verify(message);
  if (problem) {
    throw new Error(`refusing to sign a malformed ${typeName(type)}: ${problem}`);
  }
  const payload = Buffer.from(type.encode(message).finish());
  const payloadType = typeName(type);

  return {
    payload_type: payloadType,
    payload,
    signature: signer.sign(pae(payloadType, payload)),
    signer_certificate: signer.certDer,
  };
}

module.exports = {
  UnsupportedKeyError,
  keyId,
  loadSigner,
  openEnvelope,
  pae,
  seal,
  suiteFor,
  timestampOf,
};
