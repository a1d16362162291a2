// The results table: the median of each metric over the repetitions, and pgq's ratio to its own
// ceiling (the hand-written queue of the same shape) and to each peer.
import type { Metric } from "./scenarios/scenario.js";
import { median } from "./stats.js";

/** Every repetition's value, by metric and then by system. */
export class Results {
  private readonly values = new Map<string, Map<string, number[]>>();
  private readonly metrics: Metric[] = [];

  add(metric: Metric, system: string, value: number): void {
    if (!this.values.has(metric.label)) {
      this.values.set(metric.label, new Map());
      this.metrics.push(metric);
    }
    const bySystem = this.values.get(metric.label)!;
    bySystem.set(system, [...(bySystem.get(system) ?? []), value]);
  }

  toJSON() {
    return Object.fromEntries([...this.values].map(([label, bySystem]) => [label, Object.fromEntries(bySystem)]));
  }

  /** A markdown table: medians per system, then pgq / its ceiling and pgq / peer for each pgq mode. */
  table(systems: string[], pgqs: string[], peers: string[], ceilingOf: Record<string, string>): string {
    const ratios = pgqs.flatMap((p) => [...(systems.includes(ceilingOf[p]!) ? [ceilingOf[p]!] : []), ...peers].map((peer) => ({ p, peer })));
    const header = ["scenario", "unit", ...systems, ...ratios.map(({ p, peer }) => `${p} / ${peer}`)];
    const rows = this.metrics.map((metric) => {
      const bySystem = this.values.get(metric.label)!;
      const med = (s: string) => median(bySystem.get(s) ?? []);
      return [
        metric.label,
        `${metric.unit} (${metric.better} is better)`,
        ...systems.map((s) => format(med(s))),
        ...ratios.map(({ p, peer }) => ratio(med(p), med(peer))),
      ];
    });
    return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
  }
}

function format(value: number): string {
  if (Number.isNaN(value)) return "n/a";
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString("en-US");
  return value.toPrecision(2);
}

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "n/a";
  return `${(a / b).toFixed(2)}x`;
}
