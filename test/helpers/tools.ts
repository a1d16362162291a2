// Tests that need a program the machine may lack (PgBouncer, a browser, Python). A developer's
// `npm test` skips them and says why; CI (where `CI` is set) installs every one of them in
// .ci/run, so there a missing tool fails the file instead of quietly skipping it.
import { existsSync } from "node:fs";

export interface Tool {
  name: string;
  installed(): boolean;
  /** How to get it, for the skip message. */
  install: string;
}

/**
 * Options for test() or describe(): skipped, with a reason that names what is missing and how to
 * install it, when a tool is not installed. A skipped describe() runs neither its tests nor its hooks.
 */
export function needs(...tools: Tool[]): { skip?: string } {
  const missing = tools.filter((tool) => !tool.installed());
  if (missing.length === 0) return {};
  const reason = missing.map((tool) => `${tool.name} is not installed (${tool.install})`).join("; ");
  if (process.env.CI) throw new Error(`${reason}: CI must run every test`);
  return { skip: reason };
}

/** Debian's chromium, driven by playwright-core in the browser tests. */
export const chromium: Tool = {
  name: "chromium",
  installed: () => existsSync(CHROMIUM),
  install: "apt-get install --no-install-recommends chromium; .ci/run installs it",
};

export const CHROMIUM = "/usr/bin/chromium";
