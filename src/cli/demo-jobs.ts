// The demo's sample workload: an online shop's emails, thumbnails, webhooks and one broken
// report, with handlers that take a realistic while, fail now and then, and retry.
import { setTimeout as sleep } from "node:timers/promises";
import type { Queue } from "../client.js";
import type { Handler } from "../types.js";

export const DEMO_QUEUES = ["demo.emails", "demo.thumbnails", "demo.webhooks", "demo.reports"];

/** Retries come after about 1 s, then 2 s, then 4 s, so a newcomer sees them happen. */
const backoff = { baseMs: 1000, maxMs: 4000 };

const people = ["ada@example.com", "grace@example.com", "alan@example.com", "edsger@example.com", "barbara@example.com"];

/** Enqueues the whole batch; returns how many jobs. */
export async function enqueueDemoJobs(q: Queue): Promise<number> {
  const emails = Array.from({ length: 36 }, (_, i) => ({ to: people[i % people.length], template: i % 3 ? "receipt" : "welcome" }));
  const thumbnails = Array.from({ length: 20 }, (_, i) => ({ image: `uploads/2024/photo-${1000 + i}.jpg`, sizes: [64, 256, 1024] }));
  const webhooks = Array.from({ length: 16 }, (_, i) => ({ url: "https://hooks.example.com/orders", event: "order.paid", orderId: 5000 + i }));
  const ids = await Promise.all([
    q.enqueueMany("demo.emails", emails, { backoff }),
    q.enqueueMany("demo.thumbnails", thumbnails, { backoff }),
    q.enqueueMany("demo.webhooks", webhooks, { backoff, maxAttempts: 5 }),
    // Reminders that only become due a few seconds from now.
    q.enqueueMany("demo.emails", people.map((to) => ({ to, template: "cart-reminder" })), { delayMs: 6000, backoff }),
    // A password reset jumps the queue: lower priorities run first.
    q.enqueue("demo.emails", { to: "ada@example.com", template: "password-reset" }, { priority: -10 }).then((r) => [r.id]),
    // This one can never succeed: after 3 attempts it moves to dead_jobs.
    q.enqueue("demo.reports", { report: "monthly-revenue", month: "2024-13" }, { maxAttempts: 3, backoff }).then((r) => [r.id]),
  ]);
  return ids.flat().length;
}

const pause = (min: number, max: number, signal: AbortSignal) => sleep(min + Math.random() * (max - min), undefined, { signal });

export const demoHandlers: Record<string, Handler> = {
  async "demo.emails"(job, { signal }) {
    const { to, template } = job.payload as { to: string; template: string };
    await pause(150, 600, signal);
    return `sent ${template} to ${to}`;
  },
  async "demo.thumbnails"(job, { signal }) {
    await pause(400, 1200, signal);
    return `resized ${(job.payload as { image: string }).image}`;
  },
  async "demo.webhooks"(job, { signal }) {
    const { orderId } = job.payload as { orderId: number };
    await pause(100, 300, signal);
    // The receiving end is flaky for some orders: 503 once, or twice, then fine.
    const failures = orderId % 5 === 0 ? 2 : orderId % 3 === 0 ? 1 : 0;
    if (job.attempts <= failures) throw new Error("503 Service Unavailable from hooks.example.com");
    return `delivered order.paid for order ${orderId}`;
  },
  async "demo.reports"(job, { signal }) {
    await pause(200, 400, signal);
    throw new RangeError(`invalid month ${(job.payload as { month: string }).month}: months run from 01 to 12`);
  },
};
