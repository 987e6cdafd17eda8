'use strict';
/**
 * The one error a verification raises. `reason` is a stable word a caller
 * and the golden vectors can compare; `message` says what failed. Neither
 * ever carries payload content, so both are safe to print and log.
 *
 * Reasons, in the order the checks run:
 *   payload-type  the envelope is not of the type the receiver expects
 *   signer        the signing certificate is not trusted for signing
 *   signature     the signature does not verify, or no suite fits the key
 *   payload       the verified bytes do not parse
 *   header        key id, sender, audience, subject or window do not fit
 *   expired       the receiver's clock is past the header's expiry
 */

const REASONS = Object.freeze([
  'payload-type',
  'signer',
  'signature',
  'payload',
  'header',
  'expired',
]);

class VerificationError extends Error {
  constructor(reason, message) {
    if (!REASONS.includes(reason)) {
      throw new TypeError(`unknown verification reason ${reason}`);
    }
    super(message);
    this.name = 'VerificationError';
    this.reason = reason;
  }
}

module.exports = { REASONS, VerificationError };
