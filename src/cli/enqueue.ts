// pgq enqueue <queue> <json|-> [options], or pgq enqueue <queue> --file <path|-> for many jobs.
import { open } from "node:fs/promises";
import { createInterface } from "node:readline";
import { text } from "node:stream/consumers";
import type { Queue } from "../client.js";
import { transaction } from "../db/transaction.js";
import type { EnqueueOptions } from "../types.js";
import { UsageError } from "./errors.js";
import { count } from "./format.js";
import { createLogger, withSession, type GlobalOptions } from "./session.js";
import { Rate, StatusLine } from "./status-line.js";

export interface EnqueueCommandOptions {
  priority?: number;
  runAt?: Date;
  delay?: number;
  maxAttempts?: number;
  dedupeKey?: string;
  group?: string;
  expiresAt?: Date;
  ttl?: number;
  file?: string;
}

/** Jobs per INSERT when reading a file. */
const BATCH = 1000;

export async function enqueueCommand(queue: string, json: string | undefined, options: EnqueueCommandOptions, globals: GlobalOptions) {
  if ((json === undefined) === (options.file === undefined)) {
    throw new UsageError("give the payload as an argument (or - to read it from stdin), or --file with one JSON document per line");
  }
  if (options.runAt && options.delay !== undefined) throw new UsageError("give --run-at or --delay, not both");
  const jobOptions: EnqueueOptions = {
    priority: options.priority,
    runAt: options.runAt,
    delayMs: options.delay,
    maxAttempts: options.maxAttempts,
    dedupeKey: options.dedupeKey,
    groupKey: options.group,
    expiresAt: options.expiresAt,
    ttlMs: options.ttl,
  };
  const log = createLogger(globals, "warn");
  if (json !== undefined) {
    const payload = parseJson(json === "-" ? await text(process.stdin) : json, "the payload");
    const { id } = await withSession(globals, log, ({ q }) => q.enqueue(queue, payload, jobOptions));
    console.log(id);
    return;
  }
  const ids = await withSession(globals, log, ({ q }) => enqueueFile(q, queue, options.file!, jobOptions));
  if (ids.length > 0) process.stdout.write(ids.join("\n") + "\n");
}

/**
 * Reads one JSON document per line and enqueues them in batches, all in one transaction: a
 * bad line anywhere leaves the database as it was. The ids are printed once it commits.
 */
async function enqueueFile(q: Queue, queue: string, file: string, options: EnqueueOptions): Promise<string[]> {
  const unreadable = (error: unknown) => new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  const input = file === "-" ? process.stdin : (await open(file).catch((e) => Promise.reject(unreadable(e)))).createReadStream();
  const status = new StatusLine();
  const rate = new Rate();
  const ids: string[] = [];
  await transaction(q.sql, async (tx) => {
    let batch: unknown[] = [];
    let lineNo = 0;
    const flush = async () => {
      ids.push(...(await q.enqueueMany(queue, batch, { ...options, tx })));
      batch = [];
      status.update(`enqueued ${count(ids.length)} jobs into ${queue} (${count(Math.round(rate.sample(ids.length)))}/s)`);
    };
    const lines = createInterface({ input, crlfDelay: Infinity });
    // A directory opens fine and fails on the first read.
    input.once("error", (e: Error) => lines.emit("error", unreadable(e)));
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === "") continue;
      batch.push(parseJson(line, `${file === "-" ? "stdin" : file}, line ${lineNo}`));
      if (batch.length === BATCH) await flush();
    }
    if (batch.length > 0) await flush();
  });
  status.update(`enqueued ${count(ids.length)} jobs into ${queue}`);
  status.end();
  return ids;
}

/** A JSON argument from the command line; bad JSON is a usage error. */
export function parseJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  assertNumbersFit(text, what);
  return value;
}

// Strings (skipped whole, escapes included) and number tokens of valid JSON text.
const STRING_OR_NUMBER = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/**
 * Handlers read payloads as JavaScript numbers (postgres.js parses jsonb with JSON.parse), and
 * the library stores what JSON.stringify writes, so a number a double does not hold as written
 * would change on the way, silently: 9007199254740993 becomes ...992, 1152921504606846976
 * becomes ...847000, 1e400 Infinity. Only the text shows it, so the CLI refuses such numbers.
 */
function assertNumbersFit(text: string, what: string): void {
  for (const [token] of text.matchAll(STRING_OR_NUMBER)) {
    if (token.startsWith('"')) continue;
    const n = Number(token);
    if (Number.isSafeInteger(n) && /^-?\d+$/.test(token)) continue;
    if (!Number.isFinite(n)) {
      throw new UsageError(`${what} contains the number ${token}, beyond the range of a JavaScript number: write it as a string`);
    }
    if (decimal(token) !== decimal(String(n))) {
      throw new UsageError(`${what} contains the number ${token}, which a JavaScript number does not hold as written (it would become ${n}): write it as a string`);
    }
  }
}

/** A number's decimal value in one spelling: 1.50, 15e-1 and 1.5 all give "15e-1". */
function decimal(token: string): string {
  const [, sign, whole, fraction = "", exponent = "0"] = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(token)!;
  const digits = (whole! + fraction).replace(/^0+/, "");
  const significant = digits.replace(/0+$/, "");
  if (significant === "") return "0";
  return `${sign}${significant}e${Number(exponent) - fraction.length + digits.length - significant.length}`;
}
