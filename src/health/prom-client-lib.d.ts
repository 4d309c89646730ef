/**
 * Types for the prom-client modules the agent imports one by one (see
 * metrics.ts): the package's own types only describe its index, which also
 * loads the Pushgateway (http, https) and the process collectors.
 */
declare module 'prom-client/lib/registry.js' {
  import { Registry } from 'prom-client';
  export = Registry;
}
declare module 'prom-client/lib/counter.js' {
  import { Counter } from 'prom-client';
  export = Counter;
}
declare module 'prom-client/lib/gauge.js' {
  import { Gauge } from 'prom-client';
  export = Gauge;
}
/** The collectors collectDefaultMetrics runs, one per file (prom-client/lib/metrics/NAME.js). */
declare module 'prom-client/lib/metrics/*' {
  import type { DefaultMetricsCollectorConfiguration, PrometheusContentType, Registry } from 'prom-client';
  const register: (registry: Registry, config?: DefaultMetricsCollectorConfiguration<PrometheusContentType>) => void;
  export = register;
}
/** collectDefaultMetrics itself: only the tests load it (test/health/process-metrics.test.ts). */
declare module 'prom-client/lib/defaultMetrics.js' {
  import { collectDefaultMetrics } from 'prom-client';
  export = collectDefaultMetrics;
}
