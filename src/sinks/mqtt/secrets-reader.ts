/**
 * How the sink reads its secrets (password, TLS key passphrase) and TLS
 * files. Injectable so tests can hand secrets in without files; the default
 * is the agent's own reader (systemd credentials or file paths).
 */
import { readSecret, readSecretBuffer } from '../../config/secrets.js';

export interface SecretReader {
  /** A secret as text, without its trailing newline. `what` names the config field in errors. */
  text(ref: string, what: string): string;
  /** Raw bytes (PEM/DER certificates and keys). */
  buffer(ref: string, what: string): Buffer;
}

export const defaultSecretReader: SecretReader = {
  text: (ref, what) => readSecret(ref, what),
  buffer: (ref, what) => readSecretBuffer(ref, what),
};
