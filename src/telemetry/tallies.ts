// Counters and histograms for the per-job path, kept in plain numbers and exported through
// prom-client's registry in its own text format. prom-client's own inc() and observe() validate
// and hash their labels at every call, even through a labels() child: ~1 µs an increment and
// ~2.5 µs an observation, 5-6 µs a job, a tenth of a lease-mode job's whole client CPU. Here a
// series is looked up once per label set and then costs an addition (or a bucket search).
//
// prom-client takes any object with a name, help, type and get() in its registry (it is how
// Registry.merge() works); get() returns what prom-client's own metrics do, so the text, JSON,
// merged registries and the cluster aggregator all read them alike.
import type { MetricValueWithName, Registry } from "prom-client";

/** What prom-client's own metrics' get() returns. */
interface Values {
  name: string;
  help: string;
  type: "counter" | "histogram";
  values: MetricValueWithName<string>[];
  aggregator: "sum";
}

abstract class Tally<L extends string, S extends { labels: Record<L, string> }> {
  private readonly series = new Map<string, S>();
  readonly aggregator = "sum";

  constructor(readonly name: string, readonly help: string, private readonly labelNames: readonly L[], registry: Registry) {
    registry.registerMetric(this as never);
  }

  /** The series of one label set: keep it, and count through it. */
  labels(labels: Record<L, string>): S {
    const key = this.labelNames.map((l) => labels[l]).join("\u0000");
    let series = this.series.get(key);
    if (!series) this.series.set(key, (series = this.create({ ...labels })));
    return series;
  }

  get(): Promise<Values> {
    const values = [...this.series.values()].flatMap((s) => this.values(s));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** Registry.resetMetrics(): every series back to zero (the objects workers hold stay theirs). */
  reset(): void {
    for (const s of this.series.values()) this.zero(s);
  }

  abstract readonly type: "counter" | "histogram";
  protected abstract create(labels: Record<L, string>): S;
  protected abstract values(series: S): MetricValueWithName<string>[];
  protected abstract zero(series: S): void;
}

export interface CounterSeries<L extends string> {
  readonly labels: Record<L, string>;
  value: number;
}

export class CounterTally<L extends string> extends Tally<L, CounterSeries<L>> {
  readonly type = "counter";
  protected create(labels: Record<L, string>): CounterSeries<L> {
    return { labels, value: 0 };
  }
  protected values(s: CounterSeries<L>): MetricValueWithName<string>[] {
    return [{ labels: s.labels, value: s.value, metricName: this.name }];
  }
  protected zero(s: CounterSeries<L>): void {
    s.value = 0;
  }
}

export class HistogramSeries<L extends string> {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last, those above every bound. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly labels: Record<L, string>, private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class HistogramTally<L extends string> extends Tally<L, HistogramSeries<L>> {
  readonly type = "histogram";

  constructor(name: string, help: string, labelNames: readonly L[], private readonly bounds: readonly number[], registry: Registry) {
    super(name, help, labelNames, registry);
  }

  protected create(labels: Record<L, string>): HistogramSeries<L> {
    return new HistogramSeries(labels, this.bounds);
  }

  protected values(s: HistogramSeries<L>): MetricValueWithName<string>[] {
    let cumulative = 0;
    const buckets = this.bounds.map((le, i) => {
      cumulative += s.counts[i]!;
      return { labels: { ...s.labels, le }, value: cumulative, metricName: `${this.name}_bucket` };
    });
    return [
      ...buckets,
      { labels: { ...s.labels, le: "+Inf" }, value: s.count, metricName: `${this.name}_bucket` },
      { labels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
      { labels: s.labels, value: s.count, metricName: `${this.name}_count` },
    ];
  }

  protected zero(s: HistogramSeries<L>): void {
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }
}
