// Spans across a real `pgq work` process: the test installs the OpenTelemetry SDK with an
// in-memory exporter for its own (send) spans, and the worker's handler module installs it in
// the child, which writes its finished spans to a file.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { freshDatabase } from "./helpers/db.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
const tracer = trace.getTracer("test");

const { url } = await freshDatabase();
const db = postgres(url, { max: 2, onnotice: () => {} });
const q = await connect({ databaseUrl: url });
const dir = await mkdtemp(join(tmpdir(), "pgq-spans-"));
test.after(async () => {
  await q.close();
  await db.end();
  await rm(dir, { recursive: true, force: true });
});

interface ChildSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  attributes: Record<string, unknown>;
  status: { code: SpanStatusCode };
  events: string[];
  links: string[];
}

test("process spans in a pgq work process continue the trace that enqueued the job, across a retry", async () => {
  const request = tracer.startSpan("request");
  const { id } = await context.with(trace.setSpan(context.active(), request), () =>
    q.enqueue("traced", { failFirst: true }, { backoff: { baseMs: 0 } }));
  request.end();
  // A SQL caller continues a trace of its own.
  const sqlParent = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" };
  const [{ id: sqlId }] = await db<{ id: string }[]>`
    select pgq.enqueue('traced', '{}', trace_context => ${`00-${sqlParent.traceId}-${sqlParent.spanId}-01`})::text as id`;

  const [send] = exporter.getFinishedSpans().filter((s) => s.name === "send traced");
  assert.ok(send);
  assert.equal(send.kind, SpanKind.PRODUCER);
  assert.equal(send.parentSpanContext?.spanId, request.spanContext().spanId);
  assert.equal(send.spanContext().traceId, request.spanContext().traceId);
  assert.deepEqual(
    { ...send.attributes },
    {
      "messaging.system": "pgq",
      "messaging.destination.name": "traced",
      "messaging.operation": "publish",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.message.id": id,
    },
  );
  const [stored] = await db`select trace_context from pgq.jobs where id = ${id}`;
  assert.equal(stored!.trace_context, `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`);

  const spansFile = join(dir, "spans.jsonl");
  const worker = pgqWork("traced", { handler: "test/fixtures/traced-handler.mjs", mode: "lease", databaseUrl: url, env: { PGQ_TEST_SPANS_FILE: spansFile } });
  await waitFor(async () => (await db`select from pgq.jobs where queue = 'traced'`).length === 0, { what: "both jobs to complete" });
  const r = await worker.stop();
  assert.equal(r.code, 0, r.stderr);

  const spans = (await readFile(spansFile, "utf8")).trim().split("\n").map((line) => JSON.parse(line) as ChildSpan);
  const processes = spans.filter((s) => s.name === "process traced" && s.attributes["messaging.message.id"] === id);
  assert.deepEqual(processes.map((s) => [s.attributes["pgq.job.attempt"], s.attributes["pgq.job.outcome"]]), [[1, "retrying"], [2, "completed"]]);
  for (const p of processes) {
    assert.equal(p.kind, SpanKind.CONSUMER);
    assert.equal(p.traceId, send.spanContext().traceId, "the attempt joins the enqueuer's trace");
    assert.equal(p.parentSpanId, send.spanContext().spanId, "the send span is its parent");
    assert.deepEqual(p.links, [send.spanContext().spanId], "and its link, as the messaging conventions ask");
    assert.equal(p.attributes["messaging.system"], "pgq");
    assert.equal(p.attributes["messaging.destination.name"], "traced");
    assert.equal(p.attributes["messaging.operation"], "process");
    assert.equal(p.attributes["pgq.worker.mode"], "lease");
    // The handler's own span is a child of the attempt's.
    assert.ok(spans.some((s) => s.name === "handler work" && s.parentSpanId === p.spanId));
  }
  const [failed, completed] = processes;
  assert.equal(failed!.status.code, SpanStatusCode.ERROR);
  assert.deepEqual(failed!.events, ["exception"]);
  assert.equal(completed!.status.code, SpanStatusCode.UNSET);

  const fromSql = spans.find((s) => s.name === "process traced" && s.attributes["messaging.message.id"] === sqlId);
  assert.equal(fromSql?.traceId, sqlParent.traceId);
  assert.equal(fromSql?.parentSpanId, sqlParent.spanId);
});

test("the trace context survives the move to dead_jobs and a retry from there", async () => {
  const { id } = await context.with(trace.setSpan(context.active(), tracer.startSpan("request")), () =>
    q.enqueue("doomed", null, { maxAttempts: 1 }));
  const [job] = await db`select trace_context from pgq.jobs where id = ${id}`;
  assert.match(job!.trace_context, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const worker = q.work("doomed", () => Promise.reject(new Error("no")), { mode: "lease" });
  await waitFor(async () => (await db`select from pgq.dead_jobs where id = ${id}`).length === 1, { what: "the job to die" });
  await worker.stop();
  const [dead] = await db`select trace_context from pgq.dead_jobs where id = ${id}`;
  assert.equal(dead!.trace_context, job!.trace_context);
  await q.deadJobs.retry({ ids: [id] });
  const [back] = await db`select trace_context from pgq.jobs where id = ${id}`;
  assert.equal(back!.trace_context, job!.trace_context);
});

test("pgq.enqueue refuses a trace_context that is not a traceparent", async () => {
  await assert.rejects(db`select pgq.enqueue('traced', '{}', trace_context => 'not a traceparent')`, /trace_context must be a W3C traceparent/);
});
