// A Prometheus histogram for the data path. prom-client's Histogram hashes the label values into a
// string key on every observe(), even on a cached child; here a child is a plain array of counts and
// observe() is a bucket search and three additions. The registry reads it in prom-client's own shapes
// (getForPromString for the text, get for JSON), so /metrics and the workers' summing (AggregatorRegistry)
// see the same series as before.
import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string>;
type LabelValue = { le: number | string };

interface ExportedValue {
  labels: Labels | LabelValue;
  sharedLabels: Labels;
  value: number;
  metricName: string;
}

type SplayedValue = Omit<ExportedValue, 'sharedLabels'>;

/** One label combination: counts per bucket (not cumulative), their sum and count. */
export class HistogramChild {
  readonly labels: Labels;
  readonly counts: Float64Array;
  readonly bounds: readonly number[];
  sum = 0;
  count = 0;

  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }
}

export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelName: string;
  readonly #bounds: readonly number[];
  #children = new Map<string, HistogramChild>();

  constructor(options: {
    name: string;
    help: string;
    labelName: string;
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = options.name;
    this.help = options.help;
    this.#labelName = options.labelName;
    this.#bounds = [...options.buckets];
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The child of one label value; keep it (observing on it needs no lookup). */
  child(value: string): HistogramChild {
    let child = this.#children.get(value);
    if (child === undefined) {
      child = new HistogramChild({ [this.#labelName]: value }, this.#bounds);
      this.#children.set(value, child);
    }
    return child;
  }

  reset(): void {
    this.#children = new Map();
  }

  getForPromString(): PromShape<ExportedValue> {
    return histogramShape(this, this.#children.values());
  }

  get(): PromShape<SplayedValue> {
    return splayed(this.getForPromString());
  }
}

interface PromShape<V> {
  name: string;
  help: string;
  type: string;
  values: V[];
  aggregator: string;
}

/** prom-client's text shape of a histogram: buckets carry `le`, the child's labels are shared. */
function histogramShape(
  family: { name: string; help: string },
  children: Iterable<HistogramChild>,
): PromShape<ExportedValue> {
  const values: ExportedValue[] = [];
  const bucket = `${family.name}_bucket`;
  for (const child of children) {
    // A child nothing was observed on is not a series yet (as a Prometheus client creates it on observe).
    if (child.count === 0) continue;
    let cumulative = 0;
    for (let i = 0; i < child.bounds.length; i++) {
      cumulative += child.counts[i] as number;
      const le = child.bounds[i] as number;
      values.push({ labels: { le }, sharedLabels: child.labels, value: cumulative, metricName: bucket });
    }
    values.push(
      { labels: { le: '+Inf' }, sharedLabels: child.labels, value: child.count, metricName: bucket },
      { labels: {}, sharedLabels: child.labels, value: child.sum, metricName: `${family.name}_sum` },
      { labels: {}, sharedLabels: child.labels, value: child.count, metricName: `${family.name}_count` },
    );
  }
  return { name: family.name, help: family.help, type: 'histogram', values, aggregator: 'sum' };
}

/** prom-client's JSON shape: each value's labels with the shared ones merged in (its splayLabels). */
function splayed(shape: PromShape<ExportedValue>): PromShape<SplayedValue> {
  return {
    ...shape,
    values: shape.values.map(({ labels, sharedLabels, value, metricName }) => ({
      labels: { ...labels, ...sharedLabels },
      value,
      metricName,
    })),
  };
}

/**
 * A histogram whose children live elsewhere (one per label combination, kept by their owner): read
 * through `children` when the registry is read.
 */
export class HistogramFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #children: () => Iterable<HistogramChild>;

  constructor(options: {
    name: string;
    help: string;
    children: () => Iterable<HistogramChild>;
    registers: Registry[];
  }) {
    this.name = options.name;
    this.help = options.help;
    this.#children = options.children;
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  reset(): void {}

  getForPromString(): PromShape<ExportedValue> {
    return histogramShape(this, this.#children());
  }

  get(): PromShape<SplayedValue> {
    return splayed(this.getForPromString());
  }
}
