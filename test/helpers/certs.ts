/**
 * Test PKI made with the openssl command: a CA, a server certificate for
 * 127.0.0.1/localhost, client certificates (mTLS), optionally an encrypted
 * key. EC P-256 keys: generated in milliseconds.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Ca {
  dir: string;
  name: string;
  cert: string;
  key: string;
}

export interface CertFiles {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; code?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is required by the TLS tests (apt-get install openssl)');
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? String(err)}`);
  }
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeCa(dir: string, name = 'test-ca'): Ca {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(['req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { dir, name, cert, key };
}

/** A certificate signed by `ca`: server (SAN 127.0.0.1, localhost) or client (CN = identity). */
export function makeCert(ca: Ca, cn: string, kind: 'server' | 'client', base = `${kind}-${cn}`): CertFiles {
  const dir = ca.dir;
  const key = path.join(dir, `${base}.key`);
  const csr = path.join(dir, `${base}.csr`);
  const cert = path.join(dir, `${base}.crt`);
  const ext = path.join(dir, `${base}.ext`);
  fs.writeFileSync(ext, kind === 'server'
    ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
    : 'extendedKeyUsage=clientAuth\n');
  openssl(['req', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext], dir);
  return { cert, key };
}

/** Writes `key` encrypted with `passphrase` (AES-256) to `out`. */
export function encryptKey(key: string, passphrase: string, out: string): string {
  openssl(['pkey', '-in', key, '-aes256', '-passout', `pass:${passphrase}`, '-out', out], path.dirname(out));
  return out;
}
