/**
 * Turns what mqtt.js reports when a connection fails or ends into one log
 * line and a stable key. The key lets the sink log a failure once when it
 * starts and stay quiet while the same failure repeats on every retry.
 */
export interface ErrorDescription {
  key: string;
  text: string;
}

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL)/;

export function describeError(err: unknown): ErrorDescription {
  if (err === undefined || err === null) return { key: 'closed', text: 'connection closed by the broker or the network' };
  const e = err as { code?: unknown; message?: unknown; reason?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (typeof e.code === 'number') {
    // mqtt.js ErrorWithReasonCode: CONNACK refusal (3.1.1 return code or MQTT 5 reason code), DISCONNECT from the server
    return { key: `rc:${e.code}`, text: `${message} (reason code ${e.code})` };
  }
  if (typeof e.code === 'string') {
    if (TLS_CODE.test(e.code)) return { key: `tls:${e.code}`, text: `TLS error: ${message} (${e.code})` };
    return { key: e.code, text: message.includes(e.code) ? message : `${message} (${e.code})` };
  }
  if (/ssl|tls|certificate/i.test(message)) return { key: `tls:${message}`, text: `TLS error: ${message}` };
  return { key: message, text: message };
}
