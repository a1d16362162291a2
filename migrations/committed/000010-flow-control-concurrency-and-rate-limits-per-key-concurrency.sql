--! Previous: sha1:b481f4eb96347d689e876cb01dc0f22fa1b2e1ce
--! Hash: sha1:0d3bd8edf0b3c7b95b4a5340e10c9bb9babea871
--! Message: flow control: concurrency and rate limits, per-key concurrency

-- Issue 16: the limits stored in pgq.queues (000008) are enforced at claim time, in the
-- database, so that they hold across every worker process however many claim at once.
--
-- Concurrency and rate limits. A claim from a queue with either limit first calls
-- claim_budget(), which takes a transaction-scoped advisory lock on the queue and then counts,
-- so claims from that queue are serialised until each commits and the next one counts what the
-- previous one took. The count is taken in a statement of the function, and a VOLATILE function
-- takes a fresh snapshot for each statement (READ COMMITTED): the claim statement's own
-- snapshot was taken before the lock was granted and would miss the claim it waited for.
-- Running jobs are counted, not kept in a counter: a count cannot drift, and a dead worker's
-- jobs stop counting exactly when they stop being leased (rescue, or lease lapse then rescue).
-- Unlimited queues never call it: no lock, no extra read beyond the queue's settings row.
--
-- Rates are a sliding window: the start times still inside the window, per queue (key '') and,
-- for keyRateLimit, per group key. A claim takes at most count minus the starts inside the
-- window, so any window of per_ms holds at most count starts (a token bucket would let twice
-- that through around a refill). record_starts() writes what the claim actually took, after
-- its rows are leased, so idle workers' empty claims spend nothing and every recorded start is
-- at or after the moment its job was leased. When the queue's window is full the budget says
-- when its oldest start leaves it, and the worker sleeps until then.
create table :PGQ_SCHEMA.rate_windows (
  queue      text not null,
  -- '' for the queue's rateLimit, else a group key (keyRateLimit)
  key        text not null,
  -- ascending; the starts still inside the window
  starts     timestamptz[] not null,
  primary key (queue, key)
);

create function :PGQ_SCHEMA.claim_budget(
  queue_name text, want integer, concurrency integer, rate_count integer, rate_per_ms integer,
  out granted integer, out at_limit boolean, out next_slot_ms double precision, out admitted_at timestamptz)
language plpgsql volatile as $$
declare
  running integer;
  recent timestamptz[];
begin
  perform pg_advisory_xact_lock(hashtextextended(':PGQ_SCHEMA.claim.' || queue_name, 0));
  -- The clock, not now(): the transaction may have started long before the lock was granted.
  admitted_at := clock_timestamp();
  granted := want;
  at_limit := false;
  if concurrency is not null then
    -- Along jobs_leased, which holds every running job of every queue: bounded by the slots
    -- of all workers, and stopped at the limit.
    select count(*) into running from (
      select from :PGQ_SCHEMA.jobs j where j.locked_until is not null and j.queue = queue_name limit concurrency) r;
    if concurrency - running < granted then
      granted := greatest(0, concurrency - running);
      at_limit := true;
    end if;
  end if;
  if rate_count is not null and granted > 0 then
    recent := array(
      select s from :PGQ_SCHEMA.rate_windows w, unnest(w.starts) s
      where w.queue = queue_name and w.key = '' and s > admitted_at - rate_per_ms * interval '1 millisecond' order by s);
    if rate_count - cardinality(recent) < granted then
      granted := greatest(0, rate_count - cardinality(recent));
      -- Once this claim's starts are in, the window has room again when the start that brings it
      -- under rate_count leaves it: one of the recent ones, or (none left) this claim's own.
      next_slot_ms := greatest(0, coalesce(
        extract(epoch from recent[cardinality(recent) - rate_count + granted + 1]
                           + rate_per_ms * interval '1 millisecond' - admitted_at) * 1000,
        rate_per_ms));
    end if;
  end if;
end;
$$;

-- keyRateLimit: called by the claim's index walk for each grouped job it considers, under the
-- queue's lock. A key with room gets a start reserved at once, so that later rows of the same
-- key in the same claim see it; record_starts() moves the reservations of the keys the claim
-- took to after their leases (one a row skipped after all keeps it: counted, never missed).
create function :PGQ_SCHEMA.key_has_room(queue_name text, group_key text, rate_count integer, rate_per_ms integer)
returns boolean
language plpgsql volatile as $$
declare
  reserved_at timestamptz := clock_timestamp();
  window_start timestamptz := reserved_at - rate_per_ms * interval '1 millisecond';
begin
  if (select count(*) from :PGQ_SCHEMA.rate_windows w, unnest(w.starts) s
      where w.queue = queue_name and w.key = group_key and s > window_start) >= rate_count then
    return false;
  end if;
  insert into :PGQ_SCHEMA.rate_windows as w (queue, key, starts) values (queue_name, group_key, array[reserved_at])
  on conflict (queue, key) do update
  set starts = array(select s from unnest(w.starts) s where s > window_start order by s) || excluded.starts;
  return true;
end;
$$;

create function :PGQ_SCHEMA.record_starts(
  queue_name text, rate_per_ms integer, started integer, key_rate_per_ms integer, keys text[], admitted_at timestamptz)
returns void
language plpgsql volatile as $$
begin
  if rate_per_ms is not null then
    insert into :PGQ_SCHEMA.rate_windows as w (queue, key, starts)
    values (queue_name, '', array_fill(clock_timestamp(), array[started]))
    on conflict (queue, key) do update
    set starts = array(select s from unnest(w.starts) s
                       where s > clock_timestamp() - rate_per_ms * interval '1 millisecond' order by s)
                 || excluded.starts;
  end if;
  if key_rate_per_ms is not null then
    -- Every start at or after admitted_at is this claim's: the queue's lock is still held.
    update :PGQ_SCHEMA.rate_windows w
    set starts = array(select case when s >= admitted_at then clock_timestamp() else s end from unnest(w.starts) s order by s)
    where w.queue = queue_name and w.key = any(keys);
  end if;
end;
$$;

-- Per-key concurrency generalises group heads (000002): a group's first key_concurrency live
-- members are claimable and the rest wait, so a key never runs more than that many at once and
-- the claim index still holds no blocked backlog. 1, the default, is today's serial FIFO group;
-- above 1, members run unordered within the key. A member that leaves lets as many waiting
-- ones in as the key has room for, so a raised limit fills up as members finish.
create or replace function :PGQ_SCHEMA.group_job_enqueued() returns trigger
language plpgsql as $$
declare
  key_limit integer;
begin
  perform pg_advisory_xact_lock(hashtext(tg_table_schema || '.' || new.queue), hashtext(new.group_key));
  -- No row: the default, 1.
  key_limit := coalesce((select s.key_concurrency from :PGQ_SCHEMA.queues s where s.queue = new.queue), 1);
  if key_limit = 1 then
    new.group_waiting := exists (
      select from :PGQ_SCHEMA.jobs j where j.queue = new.queue and j.group_key = new.group_key);
  else
    new.group_waiting := (select count(*) from (
      select from :PGQ_SCHEMA.jobs j
      where j.queue = new.queue and j.group_key = new.group_key and not j.group_waiting limit key_limit) h) >= key_limit;
  end if;
  return new;
end;
$$;

-- The next members are claimable at once, so wake the queue's workers as the insert trigger does.
create or replace function :PGQ_SCHEMA.group_head_left() returns trigger
language plpgsql as $$
declare
  key_limit integer;
  room integer;
  due boolean;
begin
  perform pg_advisory_xact_lock(hashtext(tg_table_schema || '.' || old.queue), hashtext(old.group_key));
  key_limit := coalesce((select s.key_concurrency from :PGQ_SCHEMA.queues s where s.queue = old.queue), 1);
  room := key_limit - (select count(*) from (
    select from :PGQ_SCHEMA.jobs m
    where m.queue = old.queue and m.group_key = old.group_key and not m.group_waiting limit key_limit) h);
  with promoted as (
    update :PGQ_SCHEMA.jobs j set group_waiting = false
    where j.id in (select m.id from :PGQ_SCHEMA.jobs m
                   where m.queue = old.queue and m.group_key = old.group_key and m.group_waiting
                   order by m.id limit greatest(room, 0))
    returning j.run_at)
  select coalesce(bool_or(p.run_at <= now()), false) into due from promoted p;
  if due then
    perform pg_notify(tg_table_schema || '_jobs', old.queue);
  end if;
  return null;
end;
$$;
