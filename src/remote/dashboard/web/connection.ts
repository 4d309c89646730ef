/**
 * The page's one WebSocket to the monitor (same origin, /ws), reconnected
 * with capped backoff; on each (re)connection the current view is asked
 * again. Messages are JSON (../protocol.ts).
 */
import type { ClientMessage, ServerMessage } from '../protocol.js';
import { setClockOffset } from './probe.js';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export class Connection {
  private ws: WebSocket | undefined;
  private delay = 500;
  private view: ClientMessage = { t: 'view', view: 'none' };

  constructor(
    private readonly onMessage: (msg: ServerMessage) => void,
    private readonly onState: (state: ConnectionState, detail: string) => void,
  ) {}

  start(): void {
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
    this.onState('connecting', url);
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 500;
      this.onState('open', '');
      ws.send(JSON.stringify(this.view));
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return;
      let msg: ServerMessage;
      try {
        msg = JSON.parse(e.data) as ServerMessage;
      } catch {
        return;
      }
      if ('now' in msg && typeof msg.now === 'number') setClockOffset(msg.now - Date.now());
      this.onMessage(msg);
    };
    ws.onclose = (e) => {
      this.onState('closed', e.code === 1006 ? 'connection lost' : `closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`);
      setTimeout(() => this.start(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }

  /** What the page shows now: remembered and sent again after a reconnection. */
  show(view: ClientMessage & { t: 'view' }): void {
    this.view = view;
    this.send(view);
  }

  send(msg: ClientMessage): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }
}
