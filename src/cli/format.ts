// Human-readable output: numbers, durations and aligned tables.

const numbers = new Intl.NumberFormat("en-US");

export function count(n: number): string {
  return numbers.format(n);
}

export function age(ms: number | null): string {
  if (ms === null) return "-";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, "0")}h`;
}

/** Columns are left-aligned when named in `left`, right-aligned otherwise (numbers). */
export function table(header: string[], rows: string[][], left: number[] = [0]): string {
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (left.includes(i) ? c + " ".repeat(widths[i]! - width(c)) : " ".repeat(widths[i]! - width(c)) + c))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

// Queue names may hold any printable unicode: count code points, not UTF-16 units.
function width(text: string): number {
  return [...text].length;
}
