/**
 * The simulated vehicle's physical values as smooth functions of time, so
 * that the periodic frames and the OBD-II answers agree with each other and
 * look plausible on a dashboard (no random walk: runs are reproducible).
 */

/** Vehicle speed in km/h: a 60 s cycle between 20 and 100 km/h. */
export function speedKmh(tMs: number): number {
  return 60 + 40 * Math.sin((2 * Math.PI * tMs) / 60_000);
}

/** Engine speed in rpm: idle plus a gear-like share of the speed. */
export function engineRpm(tMs: number): number {
  return 800 + 28 * speedKmh(tMs);
}

/** Coolant temperature in °C: warms from 20 towards 90 over a few minutes, 0.1 °C resolution. */
export function coolantCelsius(tMs: number): number {
  return Math.round((90 - 70 * Math.exp(-tMs / 120_000)) * 10) / 10;
}
