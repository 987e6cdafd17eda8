'use strict';
/**
 * Trust for signing certificates: a CA bundle and the CAs' revocation lists.
 *
 * A signer certificate is accepted only when, at the receiver's clock:
 *   1. it was issued by a trusted CA (issuer name and key identifiers match,
 *      and the CA's key verifies the certificate's signature);
 *   2. the CA is a CA and is itself within its validity dates;
 *   3. the certificate is within its validity dates and is not a CA;
 *   4. the CA's CRL verifies against the CA's key, is current (thisUpdate has
 *      passed, nextUpdate has not) and does not list the certificate's serial;
 *   5. its extended key usage has document-signing (1.3.6.1.5.5.7.3.36) and
 *      neither TLS purpose: a TLS key never signs content;
 *   6. it names exactly one identity, as the URI SAN urn:ykt:<role>:<org>.
 *
 * Threats answered: a forged or self-made certificate (1), an impostor CA
 * with the trusted CA's name but another key (1), an expired or revoked key
 * (3, 4), a blocked CRL update letting a revoked key back in (4: a stale or
 * missing CRL means refusal, never acceptance), a stolen TLS key signing
 * content (5), and a certificate speaking for two parties (6).
 *
 * Only one level of CA is supported, as the gateway issues (path length 0).
 */

const crypto = require('node:crypto');
const fs = require('node:fs');

const { parseCertificate, parseCrl, pemBlocks } = require('./der');
const { VerificationError } = require('./errors');

const DOCUMENT_SIGNING = '1.3.6.1.5.5.7.3.36';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const ED25519 = '1.3.101.112';

const URI_PREFIX = 'urn:ykt:';
const ROLES = new Set(['department', 'bank', 'finance', 'unit', 'auditor', 'gateway']);
const ORG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

function refuse(message) {
  return new VerificationError('signer', message);
}

/** Parse `urn:ykt:<role>:<org>`; throws unless role and org are well formed. */
function identityFromUri(uri) {
  const rest = uri.slice(URI_PREFIX.length);
  const colon = rest.indexOf(':');
  if (!uri.startsWith(URI_PREFIX) || colon < 0) {
    throw refuse('URI SAN is not a ykt identity');
  }
  const role = rest.slice(0, colon);
  const org = rest.slice(colon + 1);
  if (!ROLES.has(role) || !ORG_PATTERN.test(org)) {
    throw refuse('URI SAN names an unknown role or a malformed organisation');
  }
  return { role, org, uri };
}

/**
 * The URI entries of Node's subjectAltName text. Node writes entries as
 * `TYPE:value` joined by ", ", and quotes a value as a JSON string when it
 * contains a separator, so quoted values are decoded rather than split.
 */
function sanUris(x509) {
  const text = x509.subjectAltName || '';
  const entries = text.matchAll(/(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g);
  const uris = [];
  for (const [, kind, value] of entries) {
    if (kind === 'URI') {
      uris.push(value.startsWith('"') ? JSON.parse(value) : value);
    }
  }
  return uris;
}

/** The one identity a certificate names; throws unless exactly one. */
function identityOf(x509) {
  const ours = sanUris(x509).filter((uri) => uri.startsWith(URI_PREFIX));
  if (ours.length !== 1) {
    throw refuse('certificate must name exactly one ykt identity');
  }
  return identityFromUri(ours[0]);
}

/** Verify `data` signed by a CA key with the named algorithm. */
function verifiedByCa(algorithm, caKey, data, signature) {
  if (algorithm === ECDSA_WITH_SHA256 && caKey.asymmetricKeyType === 'ec') {
    return crypto.verify('sha256', data, { key: caKey, dsaEncoding: 'der' }, signature);
  }
  if (algorithm === ED25519 && caKey.asymmetricKeyType === 'ed25519') {
    return crypto.verify(null, data, caKey, signature);
  }
  return false;
}

function withinValidity(fields, now) {
  return fields.notBefore <= now && now <= fields.notAfter;
}

class TrustStore {
  /**
   * @param {Buffer[]} caDers the trusted CA certificates
   * @param {Buffer[]} crlDers one CRL per CA, signed by it
   */
  constructor(caDers, crlDers) {
    this.cas = caDers.map((der) => ({
      x509: new crypto.X509Certificate(der),
      fields: parseCertificate(der),
    }));
    if (this.cas.length === 0) {
      throw new Error('the CA bundle holds no certificate');
    }
    this.crls = crlDers.map((der) => parseCrl(der));
  }

  static fromFiles(caPath, crlPaths) {
    const caDers = pemBlocks(fs.readFileSync(caPath, 'utf8'), 'CERTIFICATE');
    const crlDers = crlPaths.flatMap((p) =>
      pemBlocks(fs.readFileSync(p, 'utf8'), 'X509 CRL'),
    );
    return new TrustStore(caDers, crlDers);
  }

  /** Verify a signing certificate (DER) at `now`; return its identity. */
  verifySigner(certDer, now) {
    let x509;
    let fields;
    try {
      x509 = new crypto.X509Certificate(certDer);
      fields = parseCertificate(Buffer.from(certDer));
    } catch {
      throw refuse('signer certificate is malformed');
    }

    const ca = this.cas.find(
      (candidate) =>
        x509.checkIssued(candidate.x509) && x509.verify(candidate.x509.publicKey),
    );
    if (ca === undefined) {
      throw refuse('signing certificate does not chain to a trusted CA');
    }
    if (!ca.x509.ca || !withinValidity(ca.fields, now)) {
      throw refuse('the issuing CA is not a valid CA at this time');
    }

    if (!withinValidity(fields, now)) {
      throw refuse('signing certificate is outside its validity dates');
    }
    if (x509.ca) {
      throw refuse('a CA certificate may not sign envelopes');
    }

    this.checkNotRevoked(ca, fields, now);

    const usages = x509.keyUsage || [];
    if (!usages.includes(DOCUMENT_SIGNING)) {
      throw refuse('certificate is not a signing certificate');
    }
    if (usages.includes(SERVER_AUTH) || usages.includes(CLIENT_AUTH)) {
      throw refuse('certificate mixes signing and TLS purposes');
    }

    return { ...identityOf(x509), x509 };
  }

  checkNotRevoked(ca, fields, now) {
    const crl = this.crls.find(
      (candidate) =>
        candidate.issuerDer.equals(ca.fields.subjectDer) &&
        verifiedByCa(
          candidate.signatureAlgorithm,
          ca.x509.publicKey,
          candidate.tbsDer,
          candidate.signature,
        ),
    );
    if (crl === undefined) {
      throw refuse('revocation status unknown: no CRL for the issuer');
    }
    if (crl.nextUpdate === null || crl.nextUpdate <= now || crl.thisUpdate > now) {
      throw refuse('revocation status unknown: the CRL is not current');
    }
    if (crl.revokedSerials.has(fields.serialHex)) {
      throw refuse('certificate is revoked');
    }
  }
}

module.exports = { DOCUMENT_SIGNING, TrustStore, identityOf, sanUris };
