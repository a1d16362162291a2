// A failed attempt keeps its error as structured JSON: name, message, code, stack, cause and the
// error's own properties, whatever strings they hold.
import assert from "node:assert/strict";
import { test } from "node:test";
import { testQueue } from "./helpers/queue.js";
import { nextEvent } from "./helpers/wait.js";

class PartnerError extends Error {
  constructor(message: string, readonly status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PartnerError";
  }
}

test("the error history records name, code, stack, cause and own properties as JSON", async () => {
  const { q, db } = await testQueue();
  const { id } = await q.enqueue("partner", {}, { maxAttempts: 1 });
  const worker = q.work("partner", () => {
    const cause = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    throw Object.assign(new PartnerError("the partner API failed", 502, { cause }), {
      code: "E_PARTNER",
      url: "https://partner.example/api",
      nul: "a\u0000b",
      lone: "x\ud800y",
      big: 10n,
    });
  });
  await nextEvent(worker, "failed");
  await worker.stop();
  const [dead] = await db<{ errors: Record<string, any>[]; last_error: string }[]>`select errors, last_error from pgq.dead_jobs where id = ${id}`;
  const [entry] = dead!.errors;
  assert.equal(entry!.attempt, 1);
  assert.equal(entry!.error, "PartnerError [E_PARTNER]: the partner API failed");
  const { details } = entry!;
  assert.equal(details.name, "PartnerError");
  assert.equal(details.code, "E_PARTNER");
  assert.match(details.stack, /^PartnerError: the partner API failed\n\s+at /);
  assert.deepEqual(details.cause && { name: details.cause.name, message: details.cause.message, code: details.cause.code }, {
    name: "Error", message: "socket hang up", code: "ECONNRESET",
  });
  assert.deepEqual(details.props, { status: 502, url: "https://partner.example/api", nul: "a\\u0000b", lone: "x\ufffdy", big: "10" });
  assert.match(dead!.last_error, /^PartnerError: the partner API failed/);

  const [listed] = await q.deadJobs.list();
  assert.deepEqual((listed!.errors[0] as { details: unknown }).details, details);
});

test("a thrown non-Error is recorded as text", async () => {
  const { q, db } = await testQueue();
  const { id } = await q.enqueue("strings", {}, { maxAttempts: 1 });
  const worker = q.work("strings", () => {
    throw { reason: "not an Error" };
  });
  await nextEvent(worker, "failed");
  await worker.stop();
  const [dead] = await db<{ errors: Record<string, any>[] }[]>`select errors from pgq.dead_jobs where id = ${id}`;
  assert.deepEqual(dead!.errors[0]!.details, { name: "object", message: "{ reason: 'not an Error' }" });
});
