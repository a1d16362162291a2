--! Previous: sha1:bb514817e1b7578b6de3521fcef3874884abf738
--! Hash: sha1:9fcc26e24131effdd6f4ebe59afff30b8b304927
--! Message: pgq.queues, settings that every worker reads

-- Per-queue settings that hold across every worker and client, so they live in the database:
-- they change at run time without restarting anything, survive restarts, and a worker in any
-- process reads the same ones. Pausing (issue 12: a paused queue is not claimed from; enqueue
-- still works), how long finished jobs stay in history, a default expiry for jobs not started in
-- time, and flow control (issue 16): running jobs across all workers, per group key, and starts
-- per interval, per queue and per key. A queue with no row has the defaults: not paused, no
-- limits. Set with q.setQueue() / pgq queue set (src/admin/queues.ts).
create table :PGQ_SCHEMA.queues (
  queue             text primary key,
  paused            boolean not null default false,
  -- null: no limit
  concurrency       integer,
  key_concurrency   integer,
  rate_count        integer,
  rate_per_ms       integer,
  key_rate_count    integer,
  key_rate_per_ms   integer,
  -- null: the default (src/admin/queues.ts)
  retention_ms      bigint,
  ttl_ms            bigint,
  updated_at        timestamptz not null default now(),
  constraint queues_queue_name check (char_length(queue) between 1 and 128 and queue !~ '[[:cntrl:]]'),
  constraint queues_concurrency check (concurrency is null or concurrency >= 1),
  constraint queues_key_concurrency check (key_concurrency is null or key_concurrency >= 1),
  constraint queues_rate check ((rate_count is null) = (rate_per_ms is null) and (rate_count is null or (rate_count >= 1 and rate_per_ms >= 1))),
  constraint queues_key_rate check ((key_rate_count is null) = (key_rate_per_ms is null)
                                    and (key_rate_count is null or (key_rate_count >= 1 and key_rate_per_ms >= 1))),
  constraint queues_retention check (retention_ms is null or retention_ms >= 0),
  constraint queues_ttl check (ttl_ms is null or ttl_ms >= 1)
);
