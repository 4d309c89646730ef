/**
 * SIGHUP for `afb-edge run`: the config file is loaded and checked in a
 * worker thread (src/config/load-in-worker.ts: the files it names
 * included), then applied; an invalid file is rejected with its errors,
 * and a file that fails while being applied is rolled back (Agent.reload).
 * The running configuration never gives way to one that cannot work.
 *
 * Bounded: one reload at a time, and at most one more waiting; further
 * SIGHUPs meanwhile join the waiting one (a reload reads the file as it is
 * when it starts) and are counted (afb_edge_config_reloads_total{outcome=
 * "coalesced"}). The error lines of rejected reloads are rate-limited.
 */
import { ReloadError, type Agent } from '../../agent/agent.js';
import type { Board } from '../../config/board.js';
import { errorCount, formatLoadErrors } from '../../config/errors.js';
import { MAX_REPORTED_ERRORS } from '../../config/limits.js';
import { loadConfigInWorker } from '../../config/load-in-worker.js';
import type { ParseCache } from '../../config/parse-cache.js';
import type { SystemdService } from '../../systemd/service.js';
import { RateLimitedLog, type Logger } from '../../util/log.js';

export interface ReloaderOptions {
  file: string;
  board?: Board;
  agent: Agent;
  sd: SystemdService;
  logger: Logger;
  parseCache?: ParseCache;
  /** After a reload is applied: the parse cache's problems to log. */
  afterApplied?: () => void;
}

export class ConfigReloader {
  private running: Promise<void> | undefined;
  private waiting = false;
  private readonly abort = new AbortController();
  /** Two rejected reloads of a file with every error shown, per minute. */
  private readonly errorLog: RateLimitedLog;

  constructor(private readonly o: ReloaderOptions) {
    this.errorLog = new RateLimitedLog((m) => o.logger.error(m), 2 * (MAX_REPORTED_ERRORS + 1), 60_000);
  }

  /** A SIGHUP. */
  request(): void {
    if (this.abort.signal.aborted) return;
    if (this.running === undefined) {
      this.running = this.loop();
      return;
    }
    if (this.waiting) this.o.agent.metrics.configReloads.inc({ outcome: 'coalesced' });
    this.waiting = true;
  }

  /** The agent is stopping: the check under way is abandoned, none waits. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.waiting = false;
        await this.reloadOnce();
      } while (this.waiting && !this.abort.signal.aborted);
    } finally {
      this.running = undefined;
    }
  }

  private async reloadOnce(): Promise<void> {
    const { file, agent, sd, logger } = this.o;
    const metrics = agent.metrics.configReloads;
    sd.reloading();
    let note: string | undefined;
    try {
      const next = await loadConfigInWorker(file, { board: this.o.board, signal: this.abort.signal });
      if (next.config === undefined) {
        metrics.inc({ outcome: 'rejected' });
        note = 'configuration reload rejected';
        logger.error(`config reload rejected, keeping the running configuration: ${errorCount(next)} error(s)`);
        for (const line of formatLoadErrors(next, file)) this.errorLog.log(line);
        return;
      }
      try {
        await agent.reload(next.config);
      } catch (err) {
        metrics.inc({ outcome: 'failed' });
        note = 'configuration reload failed';
        const restored = err instanceof ReloadError && err.restored;
        logger.error(restored
          ? `config reload failed, back to the previous configuration: ${(err as Error).message}`
          : `config reload failed, and the previous configuration is not fully back: ${(err as Error).message}`);
        return;
      }
      metrics.inc({ outcome: 'applied' });
      if (next.cacheEntry !== undefined) this.o.parseCache?.adopt(next.cacheEntry);
      this.o.parseCache?.save();
      this.o.afterApplied?.();
    } catch (err) {
      if ((err as Error).name === 'AbortError') {
        logger.info('config reload abandoned: stopping');
      } else {
        // never thrown out of a signal handler's chain: the running configuration stays
        metrics.inc({ outcome: 'failed' });
        note = 'configuration reload failed';
        logger.error(`config reload failed, keeping the running configuration: ${(err as Error).message}`);
      }
    } finally {
      await sd.reloaded(note);
    }
  }
}
