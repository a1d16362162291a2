// Spans, through @opentelemetry/api only: unless the application installs an OpenTelemetry SDK,
// the API's tracer is a no-op and so is everything here. Names and attributes follow
// OpenTelemetry's messaging conventions: a `send {queue}` producer span around each enqueue,
// a `process {queue}` consumer span around each attempt.
//
// A job carries the trace context of its send span (the column trace_context, migration
// 000009), as a W3C traceparent, so that every attempt, in any worker process and after any
// number of retries, continues the trace that enqueued it. The conventions make the creation
// context a link of the process span, and allow it as the parent when a span processes one
// message: it is both, so that a trace shows the request, the enqueue and every attempt together.
import {
  context, isSpanContextValid, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Span, type SpanContext, type Tracer,
} from "@opentelemetry/api";
import type { ClaimedJob } from "../sql/claim.js";
import type { ProcessingMode } from "../types.js";

/**
 * pgq's tracer, or undefined while no SDK is registered: then no span is made at all, since even
 * the API's no-op spans and contexts cost ~1 µs a job. Asked at every span, so that an SDK
 * registered after pgq was imported, or after its workers started, is used from then on.
 */
function sdkTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  // Another copy of the API (another version) has its own proxy class: ask it for a tracer.
  return provider instanceof ProxyTracerProvider ? provider.getDelegateTracer("pgq") : provider.getTracer("pgq");
}

/** How an attempt ended, as the span's pgq.job.outcome (unrecorded: failed, and the database could not be told). */
export type AttemptOutcome = "completed" | "retrying" | "dead" | "lease-lost" | "unrecorded" | "released" | "cancelled";

/**
 * Runs `send` (an insert of `count` jobs into `destination`, a queue or a published topic) in a
 * producer span; `send` gets the span's context as a traceparent to store with the jobs.
 */
export async function sendSpan(destination: string, count: number, send: (traceContext: string | null) => Promise<string[]>): Promise<string[]> {
  const tracer = sdkTracer();
  if (!tracer) return send(null);
  // Literals, not spreads: spreading an object of dotted keys cost ~30 µs a job, as much as the job.
  const attributes: Attributes = {
    "messaging.system": "pgq",
    "messaging.destination.name": destination,
    "messaging.operation": "publish",
    "messaging.operation.type": "send",
    "messaging.operation.name": "send",
  };
  if (count !== 1) attributes["messaging.batch.message_count"] = count;
  const span = tracer.startSpan(`send ${destination}`, { kind: SpanKind.PRODUCER, attributes });
  try {
    const ids = await context.with(trace.setSpan(context.active(), span), () => send(traceparent(span.spanContext())));
    if (ids.length === 1) span.setAttribute("messaging.message.id", ids[0]!);
    return ids;
  } catch (error) {
    failed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** The consumer span of one attempt: start it when the attempt starts, end it with its outcome. */
export interface AttemptSpan {
  run<T>(attempt: () => Promise<T>): Promise<T>;
  end(outcome: AttemptOutcome, error?: unknown): void;
}

const UNTRACED: AttemptSpan = { run: (attempt) => attempt(), end: () => undefined };

export function processSpan(job: ClaimedJob, mode: ProcessingMode): AttemptSpan {
  const tracer = sdkTracer();
  return tracer ? new ProcessSpan(tracer, job, mode) : UNTRACED;
}

class ProcessSpan implements AttemptSpan {
  private readonly span: Span;
  private readonly context: Context;

  constructor(tracer: Tracer, job: ClaimedJob, mode: ProcessingMode) {
    const creation = job.trace_context === null ? undefined : spanContextOf(job.trace_context);
    const parent = creation ? trace.setSpanContext(ROOT_CONTEXT, creation) : ROOT_CONTEXT;
    this.span = tracer.startSpan(
      `process ${job.queue}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "pgq",
          "messaging.destination.name": job.queue,
          "messaging.message.id": job.id,
          "messaging.operation": "process",
          "messaging.operation.type": "process",
          "messaging.operation.name": "process",
          "pgq.job.attempt": job.attempts,
          "pgq.job.max_attempts": job.max_attempts,
          "pgq.worker.mode": mode,
        },
        links: creation ? [{ context: creation }] : undefined,
      },
      parent,
    );
    this.context = trace.setSpan(parent, this.span);
  }

  run<T>(attempt: () => Promise<T>): Promise<T> {
    return context.with(this.context, attempt);
  }

  end(outcome: AttemptOutcome, error?: unknown): void {
    this.span.setAttribute("pgq.job.outcome", outcome);
    if (error !== undefined && outcome !== "released") failed(this.span, error);
    this.span.end();
  }
}

function failed(span: Span, error: unknown): void {
  const exception = error instanceof Error ? error : new Error(String(error));
  span.recordException(exception);
  span.setStatus({ code: SpanStatusCode.ERROR, message: exception.message });
  span.setAttribute("error.type", exception.name);
}

/** A span's context as a W3C traceparent; null when there is none (no SDK, nothing sampled upstream). */
export function traceparent(span: SpanContext): string | null {
  if (!isSpanContextValid(span)) return null;
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/;

/** A stored traceparent as a remote span context; undefined if it is not one (SQL callers write it by hand). */
export function spanContextOf(text: string): SpanContext | undefined {
  const match = TRACEPARENT.exec(text);
  if (!match || match[1] === "ff") return undefined;
  const context: SpanContext = { traceId: match[2]!, spanId: match[3]!, traceFlags: parseInt(match[4]!, 16) & 1, isRemote: true };
  return isSpanContextValid(context) ? context : undefined;
}
