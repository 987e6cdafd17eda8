'use strict';
/**
 * A minimal DER reader: just enough ASN.1 to read a certificate's serial
 * number, names and validity dates, and a certificate revocation list (CRL).
 *
 * Node's crypto.X509Certificate checks signatures and issuers but does not
 * parse CRLs and does not hand out the raw issuer name, so these few fields
 * are read here directly from the DER bytes.
 *
 * Invariants:
 * - Every read is bounds-checked; a truncated or over-long element throws
 *   DerError. Callers treat any DerError as "refuse", never as "skip".
 * - Only definite lengths (DER) are accepted; indefinite lengths (BER) and
 *   lengths longer than 4 octets throw.
 * - Nothing here decides trust. It only reads; pki.js decides.
 */

class DerError extends Error {}

const TAG = Object.freeze({
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OID: 0x06,
  SEQUENCE: 0x30,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  CONTEXT_0: 0xa0,
});

/** Read one element at `offset`: its tag, content bounds and end. */
function readElement(buf, offset) {
  if (offset + 2 > buf.length) {
    throw new DerError('element header runs past the end');
  }
  const tag = buf[offset];
  let length = buf[offset + 1];
  let contentStart = offset + 2;

  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4) {
      throw new DerError('unsupported length encoding');
    }
    if (contentStart + octets > buf.length) {
      throw new DerError('length runs past the end');
    }
    length = 0;
    for (let i = 0; i < octets; i += 1) {
      length = length * 256 + buf[contentStart + i];
    }
    contentStart += octets;
  }

  const end = contentStart + length;
  if (end > buf.length) {
    throw new DerError('element runs past the end');
  }
  return { tag, start: offset, contentStart, end };
}

/** The elements directly inside a constructed element. */
function children(buf, element) {
  const found = [];
  let offset = element.contentStart;
  while (offset < element.end) {
    const child = readElement(buf, offset);
    if (child.end > element.end) {
      throw new DerError('child runs past its parent');
    }
    found.push(child);
    offset = child.end;
  }
  return found;
}

function expectTag(element, tag, what) {
  if (element === undefined || element.tag !== tag) {
    throw new DerError(`expected ${what}`);
  }
  return element;
}

function raw(buf, element) {
  return buf.subarray(element.start, element.end);
}

function content(buf, element) {
  return buf.subarray(element.contentStart, element.end);
}

/** An INTEGER's magnitude as upper-case hex without leading zeros. */
function integerHex(buf, element) {
  expectTag(element, TAG.INTEGER, 'an INTEGER');
  const hex = content(buf, element).toString('hex').replace(/^(00)+/, '');
  return (hex || '0').toUpperCase();
}

/** UTCTime or GeneralizedTime, both with a trailing Z, as a Date. */
function readTime(buf, element) {
  const text = content(buf, element).toString('ascii');
  let match;
  let year;
  if (element.tag === TAG.UTC_TIME) {
    match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match) {
      const yy = Number(match[1]);
      year = yy < 50 ? 2000 + yy : 1900 + yy; // RFC 5280, 4.1.2.5.1
    }
  } else if (element.tag === TAG.GENERALIZED_TIME) {
    match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match) {
      year = Number(match[1]);
    }
  }
  if (!match) {
    throw new DerError('time is not a UTCTime or GeneralizedTime in UTC');
  }
  return new Date(
    Date.UTC(
      year,
      Number(match[2]) - 1,
      Number(match[3]),
      Number(match[4]),
      Number(match[5]),
      Number(match[6]),
    ),
  );
}

function isTime(element) {
  return (
    element !== undefined &&
    (element.tag === TAG.UTC_TIME || element.tag === TAG.GENERALIZED_TIME)
  );
}

/** Dotted text of an OBJECT IDENTIFIER. */
function oidText(buf, element) {
  expectTag(element, TAG.OID, 'an OBJECT IDENTIFIER');
  const bytes = content(buf, element);
  if (bytes.length === 0) {
    throw new DerError('empty OBJECT IDENTIFIER');
  }
  const parts = [];
  let value = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    value = value * 128 + (bytes[i] & 0x7f);
    if ((bytes[i] & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  const first = parts.shift();
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

/**
 * The fields of a certificate that Node does not expose in raw form:
 * serial (hex), issuer and subject names (DER) and the validity window.
 */
function parseCertificate(der) {
  const cert = expectTag(readElement(der, 0), TAG.SEQUENCE, 'a Certificate');
  const tbs = expectTag(children(der, cert)[0], TAG.SEQUENCE, 'a TBSCertificate');
  const fields = children(der, tbs);
  let i = 0;

  if (fields[i] && fields[i].tag === TAG.CONTEXT_0) {
    i += 1; // explicit version
  }
  const serialHex = integerHex(der, fields[i]);
  expectTag(fields[i + 1], TAG.SEQUENCE, 'a signature AlgorithmIdentifier');
  const issuer = expectTag(fields[i + 2], TAG.SEQUENCE, 'an issuer Name');
  const validity = expectTag(fields[i + 3], TAG.SEQUENCE, 'a Validity');
  const subject = expectTag(fields[i + 4], TAG.SEQUENCE, 'a subject Name');
  const [notBefore, notAfter] = children(der, validity);
  if (!isTime(notBefore) || !isTime(notAfter)) {
    throw new DerError('validity lacks its two times');
  }

  return {
    serialHex,
    issuerDer: Buffer.from(raw(der, issuer)),
    subjectDer: Buffer.from(raw(der, subject)),
    notBefore: readTime(der, notBefore),
    notAfter: readTime(der, notAfter),
  };
}

/**
 * A CRL's signed part and its fields. The signature is NOT checked here:
 * pki.js checks it against the CA's key before it believes any field.
 */
function parseCrl(der) {
  const list = expectTag(readElement(der, 0), TAG.SEQUENCE, 'a CertificateList');
  const [tbs, outerAlgorithm, signature] = children(der, list);
  expectTag(tbs, TAG.SEQUENCE, 'a TBSCertList');
  expectTag(outerAlgorithm, TAG.SEQUENCE, 'a signature AlgorithmIdentifier');
  expectTag(signature, TAG.BIT_STRING, 'a signature BIT STRING');

  const fields = children(der, tbs);
  let i = 0;
  if (fields[i] && fields[i].tag === TAG.INTEGER) {
    i += 1; // version
  }
  const innerAlgorithm = expectTag(fields[i], TAG.SEQUENCE, 'an AlgorithmIdentifier');
  const issuer = expectTag(fields[i + 1], TAG.SEQUENCE, 'an issuer Name');
  if (!isTime(fields[i + 2])) {
    throw new DerError('CRL lacks thisUpdate');
  }
  const thisUpdate = readTime(der, fields[i + 2]);
  let next = i + 3;
  let nextUpdate = null;
  if (isTime(fields[next])) {
    nextUpdate = readTime(der, fields[next]);
    next += 1;
  }
  const revokedSerials = new Set();
  if (fields[next] && fields[next].tag === TAG.SEQUENCE) {
    for (const entry of children(der, fields[next])) {
      const [serial] = children(der, expectTag(entry, TAG.SEQUENCE, 'an entry'));
      revokedSerials.add(integerHex(der, serial));
    }
  }

  const bits = content(der, signature);
  if (bits.length < 1 || bits[0] !== 0) {
    throw new DerError('signature BIT STRING has unused bits');
  }
  const outerAlgorithmDer = raw(der, outerAlgorithm);
  if (!outerAlgorithmDer.equals(raw(der, innerAlgorithm))) {
    throw new DerError('the two signature algorithms of the CRL differ');
  }

  return {
    tbsDer: Buffer.from(raw(der, tbs)),
    signatureAlgorithm: oidText(der, children(der, outerAlgorithm)[0]),
    signature: Buffer.from(bits.subarray(1)),
    issuerDer: Buffer.from(raw(der, issuer)),
    thisUpdate,
    nextUpdate,
    revokedSerials,
  };
}

/** The DER bodies of every block of one PEM label in a text. */
function pemBlocks(text, label) {
  const pattern = new RegExp(
    `-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`,
    'g',
  );
  return [...text.matchAll(pattern)].map((m) =>
    Buffer.from(m[1].replace(/\s+/g, ''), 'base64'),
  );
}

module.exports = {
  DerError,
  parseCertificate,
  parseCrl,
  pemBlocks,
};
