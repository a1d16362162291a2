// The claim-ahead target: what a worker finishes in two claim round trips, never more than its cap.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ClaimAhead } from "../src/worker/claim-ahead.js";

function finishing(ahead: ClaimAhead, jobs: number, overMs: number, from = 10_000): void {
  for (let i = 0; i < jobs; i++) ahead.jobFinished(from + (i * overMs) / jobs);
}

test("nothing finished yet: nothing is claimed ahead", () => {
  const ahead = new ClaimAhead(100);
  ahead.claimTook(5);
  assert.equal(ahead.target(10_000), 0);
});

test("short jobs: the buffer covers two claims' worth of finished jobs", () => {
  const ahead = new ClaimAhead(100);
  ahead.claimTook(5);
  finishing(ahead, 1000, 1000);
  // 1000 jobs a second is one per ms; two claims of 5 ms each.
  assert.equal(ahead.target(10_999), 10);
});

test("long jobs: nothing is held back from other workers", () => {
  const ahead = new ClaimAhead(100);
  ahead.claimTook(5);
  finishing(ahead, 16, 1000);
  assert.equal(ahead.target(10_999), 0);
});

test("the target never passes its cap, and forgets completions older than a second", () => {
  const ahead = new ClaimAhead(8);
  ahead.claimTook(50);
  finishing(ahead, 5000, 1000);
  assert.equal(ahead.target(10_999), 8);
  assert.equal(ahead.target(12_500), 0);
});

test("one slow claim moves the average, not the whole target", () => {
  const ahead = new ClaimAhead(1000);
  ahead.claimTook(5);
  ahead.claimTook(105);
  finishing(ahead, 1000, 1000);
  assert.equal(ahead.target(10_999), 50);
});
