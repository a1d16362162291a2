// Tests that need a program the machine may lack (PgBouncer, a browser, Python). A developer's
// `npm test` skips them and says why; CI (where `CI` is set) installs every one of them in
// .ci/run, so there a missing tool fails the file instead of quietly skipping it.
import { spawnSync } from "node:child_process";

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

/**
 * Debian's python3 with its psycopg package. Named by path: the `python3` first on PATH may be
 * another Python (pyenv's) that does not see Debian's packages.
 */
export const PYTHON = "/usr/bin/python3";

export const python3Psycopg: Tool = {
  name: "python3-psycopg",
  installed: () => spawnSync(PYTHON, ["-c", "import psycopg"], { stdio: "ignore" }).status === 0,
  install: "apt-get install python3-psycopg; .ci/run installs it",
};

/** Debian's chromium, driven by playwright-core in the browser tests. */
export const chromium: Tool = {
  name: "chromium",
  installed: () => existsSync(CHROMIUM),
  install: "apt-get install --no-install-recommends chromium; .ci/run installs it",
};

export const CHROMIUM = "/usr/bin/chromium";
