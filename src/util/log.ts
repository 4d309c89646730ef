/**
 * Minimal leveled logger writing one line per record to stderr, plus a
 * rate limiter so that a peer flooding malformed input cannot flood the log.
 * (No logging library: the agent logs to the journal through stderr, where
 * systemd adds time and unit; a library would only add weight.)
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function createLogger(level: LogLevel = 'info', sink: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const min = ORDER[level];
  const make = (lvl: Exclude<LogLevel, 'silent'>) => (msg: string): void => {
    if (ORDER[lvl] >= min) sink(`<${lvl}> ${msg}`);
  };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Lets through at most `burst` records per `windowMs`, then reports how many it held back. */
export class RateLimitedLog {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly emit: (msg: string) => void,
    private readonly burst = 10,
    private readonly windowMs = 10_000,
  ) {}

  log(msg: string): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.emit(`(${this.suppressed} similar messages suppressed)`);
      this.windowStart = now;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count < this.burst) {
      this.count++;
      this.emit(msg);
    } else {
      this.suppressed++;
    }
  }
}

/**
 * Logs the first record of each kind (e.g. an exception class and message),
 * then only counts: a bug that fires on every message is one log line, not
 * a flooded journal. At most `maxKinds` kinds are remembered; records of
 * further kinds go through a RateLimitedLog.
 */
export class OncePerKindLog {
  private readonly seen = new Map<string, number>();
  private readonly overflow: RateLimitedLog;

  constructor(private readonly emit: (msg: string) => void, private readonly maxKinds = 64) {
    this.overflow = new RateLimitedLog(emit);
  }

  log(kind: string, msg: string): void {
    const n = this.seen.get(kind);
    if (n !== undefined) {
      this.seen.set(kind, n + 1);
      return;
    }
    if (this.seen.size >= this.maxKinds) {
      this.overflow.log(msg);
      return;
    }
    this.seen.set(kind, 1);
    this.emit(`${msg} (logged once; later ones of this kind are only counted)`);
  }

  /** How many records of `kind` were seen. */
  count(kind: string): number {
    return this.seen.get(kind) ?? 0;
  }
}

/** A short kind for an exception: its class and the first line of its message. */
export function errorKind(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message.split('\n', 1)[0]!.slice(0, 200)}`;
  return `thrown ${typeof err}: ${String(err).slice(0, 200)}`;
}
