// pgq's enqueues on q.sql never outnumber its connections (src/db/pool-gate.ts says why).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Sql } from "postgres";
import { PoolGate } from "../src/db/pool-gate.js";

test("no more statements run at once on the pool than it has connections; the rest start in the order they came, whatever fails", async () => {
  const pool = { options: { max: 3 } } as unknown as Sql;
  const gate = new PoolGate(pool);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const runs = Array.from({ length: 3000 }, (_, i) =>
    gate.run(pool, async () => {
      started.push(i);
      most = Math.max(most, ++running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      if (i % 7 === 0) throw new Error(`statement ${i} failed`);
      return i;
    }));
  const results = await Promise.allSettled(runs);
  assert.equal(most, 3);
  assert.deepEqual(started, Array.from({ length: 3000 }, (_, i) => i));
  assert.equal(results.filter((r) => r.status === "rejected").length, Math.ceil(3000 / 7));
  // Every slot came back, the failed statements' too: three start at once again.
  let release!: () => void;
  const hold = new Promise<void>((resolve) => (release = resolve));
  let now = 0;
  const three = Array.from({ length: 3 }, () => gate.run(pool, async () => {
    now++;
    await hold;
  }));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(now, 3);
  release();
  await Promise.all(three);
});

test("statements in a caller's transaction do not wait at the gate", async () => {
  const pool = { options: { max: 1 } } as unknown as Sql;
  const gate = new PoolGate(pool);
  let release!: () => void;
  const held = gate.run(pool, () => new Promise<void>((resolve) => (release = resolve)));
  assert.equal(await gate.run({}, async () => "ran"), "ran");
  release();
  await held;
});
