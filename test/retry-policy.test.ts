import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_BACKOFF } from "../src/job-defaults.js";
import { retryDelayMs } from "../src/retry-policy.js";

test("retry n waits baseMs * 2^(n-1) at the middle of its jitter", () => {
  const middle = () => 0.5;
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => retryDelayMs(n, DEFAULT_BACKOFF, middle)),
    [1000, 2000, 4000, 8000, 16000],
  );
});

test("jitter spreads each delay over +/-25%", () => {
  assert.equal(retryDelayMs(3, DEFAULT_BACKOFF, () => 0), 3000);
  assert.equal(retryDelayMs(3, DEFAULT_BACKOFF, () => 1), 5000);
});

test("delays are capped at maxMs, jitter included, however many attempts", () => {
  const backoff = { baseMs: 1000, maxMs: 10_000 };
  assert.equal(retryDelayMs(5, backoff, () => 1), 10_000);
  assert.equal(retryDelayMs(1000, backoff, () => 0.5), 10_000);
  assert.equal(retryDelayMs(1000, DEFAULT_BACKOFF, () => 1), DEFAULT_BACKOFF.maxMs);
});

test("a zero base retries at once", () => {
  assert.equal(retryDelayMs(7, { baseMs: 0, maxMs: 0 }), 0);
});
