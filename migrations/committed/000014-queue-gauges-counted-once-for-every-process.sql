--! Previous: sha1:c57c0dff57e9273f809328d36a706a284ee2b072
--! Hash: sha1:74033f04a55a1a0d4d7179f3ddde2fe8fb30bb04
--! Message: queue gauges counted once for every process

-- Issue 14: the Prometheus gauges of jobs by queue and state, and each queue's oldest ready age,
-- describe the whole database, so one process counts them for every other. A scraped process
-- that finds the reading here older than a few seconds tries a transaction-scoped advisory lock;
-- the one that takes it counts (inspect's bounded counts) and rewrites this row, the others use
-- the reading as it is. So the row is rewritten at most once per refresh period (5 s) across
-- every process, and only while something scrapes: one dead tuple a period, pruned on its page
-- by a later update (no indexed column changes, so every update is HOT), and the table stays a
-- page or two. Unlogged: a reading is worthless after a crash (the next scrape counts again),
-- so it writes no WAL and is not replicated.
create unlogged table :PGQ_SCHEMA.queue_gauges (
  single   boolean primary key default true check (single),
  taken_at timestamptz not null,
  -- [{ queue, ready, scheduled, running, retrying, dead, oldestReadyAgeMs }, ...]
  queues   jsonb not null
) with (fillfactor = 50);
