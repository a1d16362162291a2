// One line at the bottom of a terminal that redraws in place (progress, counts, rate), with
// ordinary lines and log records printed above it. When stderr is not a terminal the status
// line is off, and lines are simply written.

export class StatusLine {
  readonly enabled: boolean;
  private text = "";

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = stream.isTTY === true;
  }

  update(text: string): void {
    if (!this.enabled) return;
    this.text = text.slice(0, (this.stream.columns || 120) - 1);
    this.stream.write(`\r\x1b[2K${this.text}`);
  }

  /** Prints a line above the status line. */
  print(line: string): void {
    if (this.enabled) this.stream.write(`\r\x1b[2K${line}\n${this.text}`);
    else this.stream.write(`${line}\n`);
  }

  /** Leaves the last status on screen and moves below it. */
  end(): void {
    if (this.enabled && this.text) this.stream.write("\n");
    this.text = "";
  }
}

/** Jobs per second over the last `windowS` seconds, sampled once a second. */
export class Rate {
  private readonly samples: { at: number; count: number }[] = [];

  constructor(private readonly windowS = 10) {}

  /** Records the running total now, and returns the rate over the window. */
  sample(total: number, now = performance.now()): number {
    this.samples.push({ at: now, count: total });
    while (this.samples.length > this.windowS + 1) this.samples.shift();
    const first = this.samples[0]!;
    const seconds = (now - first.at) / 1000;
    return seconds > 0 ? (total - first.count) / seconds : 0;
  }
}
