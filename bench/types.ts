// The contract between the benchmark harness (bench/run.ts) and its suites (bench/suites/<name>.ts,
// each exporting `suite`). Suites measure; the harness selects, records and renders.

export interface BenchContext {
  /** --quick: fewer rounds, shorter loads; the whole quick run stays under 2 minutes. */
  quick: boolean;
  /** A fresh scratch directory for configs, logs and pid files of this suite. */
  tmpDir: string;
  log(line: string): void;
}

export interface BenchMeasurement {
  /** The system under test or baseline, e.g. "keepip gateway", "nginx 1.22.1", "proxy-protocol-js". */
  system: string;
  /** What was measured, e.g. "req/s", "p99 ms", "ns/header", "MB/s", "CPU µs/req", "RSS MB". */
  metric: string;
  value: number;
  /** The scenario, e.g. "v2 TCP4", "100k prefixes", "wrk -c64 keep-alive". */
  case: string;
}

export interface BenchRatio {
  /** e.g. "keepip / nginx req/s (ACL, 1 worker)". */
  label: string;
  value: number;
  /** The target from shared/reference/performance.md, when there is one, e.g. ">= 0.5". */
  target?: string;
  met?: boolean;
}

export interface SuiteResult {
  measurements: BenchMeasurement[];
  ratios: BenchRatio[];
  /**
   * Anything that went wrong during a load: non-2xx/unexpected status codes, socket errors, wrong
   * bytes. A non-empty list makes the harness exit non-zero, so a fast but broken build never wins.
   */
  errors: string[];
  notes?: string[];
}

export interface BenchSuite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<SuiteResult>;
}
