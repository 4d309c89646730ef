/**
 * The TLS files of the MQTT connection (CA, client certificate and key, key
 * passphrase), read from disk and re-read when they change, so a rotated
 * certificate is used without restarting the agent. A change is noticed by
 * the files' fingerprints (inode, size, mtime: rotation tools either rewrite
 * in place or rename a new file over the old one; both change one of them).
 */
import type { TlsConfig } from '../../config/types.js';
import { fileFingerprint } from '../../config/secrets.js';
import type { SecretReader } from './secrets-reader.js';
import { lazyRequire } from '../../util/lazy-require.js';

const tls = lazyRequire<typeof import('node:tls')>('node:tls');

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
}

export class TlsFiles {
  private material: TlsMaterial | undefined;
  private loadedPrint: string | undefined;
  private failedPrint: string | undefined;

  constructor(private readonly tls: TlsConfig, private readonly secrets: SecretReader) {}

  /** Fingerprint of all the files now ("-" for a file that cannot be stat'ed). */
  fingerprint(): string {
    const t = this.tls;
    return [t.ca_file, t.cert_file, t.key_file, t.key_passphrase_file]
      .map((ref) => (ref === undefined ? '' : fileFingerprint(ref) ?? '-'))
      .join('|');
  }

  /** True when the files differ from the ones in use (and not from a set already found invalid). */
  changed(): boolean {
    const now = this.fingerprint();
    return now !== this.loadedPrint && now !== this.failedPrint;
  }

  /**
   * The material to connect with: re-read when the files changed. A new set
   * that cannot be read or does not form a valid key pair (a rotation caught
   * half-way) is reported through `onInvalid` once and the previous set is
   * kept; with no previous set, the error is thrown.
   */
  current(onInvalid: (err: Error) => void): TlsMaterial {
    const print = this.fingerprint();
    if (this.material && (print === this.loadedPrint || print === this.failedPrint)) return this.material;
    try {
      this.material = this.read();
      this.loadedPrint = print;
      this.failedPrint = undefined;
    } catch (err) {
      if (!this.material) throw err;
      if (print !== this.failedPrint) onInvalid(err as Error);
      this.failedPrint = print;
    }
    return this.material;
  }

  /** True once a set was loaded and the files now hold a different, valid set. */
  rotated(onInvalid: (err: Error) => void): boolean {
    if (!this.material || !this.changed()) return false;
    const before = this.material;
    this.current(onInvalid);
    return this.material !== before;
  }

  private read(): TlsMaterial {
    const t = this.tls;
    const m: TlsMaterial = {};
    if (t.ca_file !== undefined) m.ca = this.secrets.buffer(t.ca_file, 'mqtt.tls.ca_file');
    if (t.cert_file !== undefined) m.cert = this.secrets.buffer(t.cert_file, 'mqtt.tls.cert_file');
    if (t.key_file !== undefined) m.key = this.secrets.buffer(t.key_file, 'mqtt.tls.key_file');
    if (t.key_passphrase_file !== undefined) m.passphrase = this.secrets.text(t.key_passphrase_file, 'mqtt.tls.key_passphrase_file');
    try {
      // Fails on unparsable PEM, a wrong passphrase, or a key that does not match the certificate.
      tls().createSecureContext({ ca: m.ca, cert: m.cert, key: m.key, passphrase: m.passphrase });
    } catch (err) {
      throw new Error(`mqtt.tls: ${(err as Error).message} (${[t.ca_file, t.cert_file, t.key_file].filter(Boolean).join(', ')})`);
    }
    return m;
  }
}
