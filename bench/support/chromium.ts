/**
 * Headless Chromium for the dashboard tests (test/remote) and bench/dashboard-scale.ts: Debian's `chromium`
 * package (CI installs it: .ci/run), driven by playwright-core with that
 * executable (no browser download). The flags keep it off the network: on a
 * closed machine its background connections would only be refused.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.AFB_EDGE_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launches it (one at a time: callers close it in their cleanup); a missing binary is an error that says what to install. */
export async function launchChromium(): Promise<Browser & { closeAll(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium), as .ci/run does`);
  const profile = mkdtempSync(join(tmpdir(), 'afb-edge-chromium-'));
  // launchPersistentContext would own the profile; launch() with --user-data-dir in args is refused by
  // playwright, so the fresh empty profile is playwright's own temporary one, and this directory is the
  // crash dumps' (kept off $HOME).
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, `--crash-dumps-dir=${profile}`], timeout: 30_000 });
  return Object.assign(browser, {
    async closeAll() {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  });
}
