// Topic routing, as a RabbitMQ topic exchange: queues subscribe with patterns, and a publish
// puts one job in every queue with a matching pattern. Matching happens in SQL (migration
// 000002: pgq.topic_regex and pgq.subscribed_queues), so a publish is one statement.
import type { Logger } from "pino";
import type { Sql } from "postgres";
import type { Executor } from "../db/executor.js";
import { prepareEnqueue } from "../enqueue.js";
import { ValidationError } from "../errors.js";
import { execute, qualified, sqlText } from "../db/statement.js";
import type { Tables } from "../db/tables.js";
import { insertNewJobs } from "../sql/insert-jobs.js";
import type { PublishOptions, Subscription } from "../types.js";
import { assertQueueName } from "../validate.js";

const MAX_TOPIC_LENGTH = 255;

/**
 * Topics and patterns are dot-separated, non-empty words of printable characters; in a
 * pattern, "*" (one word) and "#" (zero or more words) stand alone as words.
 */
function assertWords(value: unknown, what: "topic" | "pattern"): asserts value is string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_TOPIC_LENGTH) {
    throw new ValidationError("INVALID_OPTION", `the ${what} must be a string of 1 to ${MAX_TOPIC_LENGTH} characters`);
  }
  for (const word of value.split(".")) {
    if (word === "" || /[\p{Cc}\p{Cs}]/u.test(word) || !word.isWellFormed()) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${what} ${JSON.stringify(value)} must be dot-separated non-empty words of printable characters, like "orders.created.eu"`,
      );
    }
    const wildcard = word === "*" || word === "#";
    if ((word.includes("*") || word.includes("#")) && !(what === "pattern" && wildcard)) {
      throw new ValidationError(
        "INVALID_OPTION",
        what === "topic"
          ? `topic ${JSON.stringify(value)} contains a wildcard; wildcards belong in subscription patterns`
          : `pattern ${JSON.stringify(value)}: "*" and "#" must be whole words, as in "orders.*.eu" or "orders.#"`,
      );
    }
  }
}

/** Routes topics matching `pattern` to `queue`; subscribing twice changes nothing. */
export async function subscribe(sql: Sql, t: Tables, queue: unknown, pattern: unknown): Promise<void> {
  assertQueueName(queue);
  assertWords(pattern, "pattern");
  await sql`insert into ${t.subscriptions} (queue, pattern) values (${queue}, ${pattern}) on conflict do nothing`;
}

/** Stops routing `pattern` to `queue`; false if there was no such subscription. */
export async function unsubscribe(sql: Sql, t: Tables, queue: unknown, pattern: unknown): Promise<boolean> {
  assertQueueName(queue);
  assertWords(pattern, "pattern");
  const deleted = await sql`delete from ${t.subscriptions} where queue = ${queue} and pattern = ${pattern}`;
  return deleted.count === 1;
}

export async function listSubscriptions(sql: Sql, t: Tables): Promise<Subscription[]> {
  const rows = await sql<{ queue: string; pattern: string; created_at: Date }[]>`
    select queue, pattern, created_at from ${t.subscriptions} order by queue, pattern`;
  return rows.map((r) => ({ queue: r.queue, pattern: r.pattern, createdAt: r.created_at }));
}

/**
 * Publishes in one statement: one job in every subscribed queue, all or none, on the pool or in
 * the caller's transaction. Returns the jobs' ids in queue-name order; with a dedupe key, a
 * queue that already has a live job with that key gives that job's id instead.
 */
export async function publish(
  sql: Executor,
  t: Tables,
  log: Logger,
  topic: unknown,
  payload: unknown,
  options: PublishOptions,
  maxPayloadBytes: number,
  traceContext: string | null = null,
): Promise<string[]> {
  assertWords(topic, "topic");
  // Any queue name would do: the real ones come from the subscriptions.
  const { texts, settings: checked } = prepareEnqueue("topic", [payload], options, maxPayloadBytes);
  const settings = { ...checked, traceContext };
  // As in insertJobs, a twin committed while this statement runs is invisible to it: that
  // queue then has no id, and a second run (which inserts nothing new) sees the twin.
  for (let attempt = 0; ; attempt++) {
    const rows = await execute<{ queue: string; id: string | null }>(sql, sqlText`
      with target as (
        select queue from ${qualified(t.schema, "subscribed_queues")}(${topic}::text) as s(queue)
      ), inserted as (
        ${insertNewJobs(t.schema, {
          queue: sqlText`target.queue`,
          payload: sqlText`${texts[0]!}::text::jsonb`,
          from: sqlText`from target order by target.queue`,
          settings,
        })}
        returning id, queue
      )
      select target.queue, coalesce(inserted.id, twin.id) as id
      from target
      left join inserted on inserted.queue = target.queue
      left join ${qualified(t.schema, "jobs")} twin
        on inserted.id is null and twin.queue = target.queue and twin.dedupe_key = ${settings.dedupeKey}::text
      order by target.queue`);
    if (rows.length === 0) {
      log.debug({ topic }, "published to no queue: no subscription matches the topic");
      return [];
    }
    if (rows.every((r) => r.id !== null) || attempt >= 3) {
      if (rows.some((r) => r.id === null)) throw new Error(`publish to ${topic} found no job id for some queues`);
      return rows.map((r) => r.id!);
    }
  }
}
