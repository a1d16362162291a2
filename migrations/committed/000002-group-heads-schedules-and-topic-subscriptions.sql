--! Previous: sha1:1e9a85fd72eacd1d71d015739e9125708d782b2e
--! Hash: sha1:7c94510359be4158747c6aeabeb27029627bf79a
--! Message: group heads, schedules and topic subscriptions

-- Issue 5: group heads kept by triggers so that the claim stays fast with many groups; cron
-- schedules and topic subscriptions, which live in the database so that they survive restarts
-- and every worker and client sees the same ones.

-- Group heads. 000001 let a grouped job run only while no earlier job of its group was left,
-- checked row by row in the claim. Waiting members sort before newer ready jobs (their run_at
-- is older), so every claim walked over all of them: with 1,000 groups whose head waits for a
-- retry and 9 members behind each, a claim took 26 ms instead of 1 ms, growing with the backlog.
-- Now a grouped job records whether it waits for an earlier member, the claim index leaves
-- waiting jobs out, and the claim reads `not group_waiting` (src/claim.ts).
--
-- Triggers keep the flag exact. A new grouped job waits if its group has any live job; when a
-- group's head leaves pgq.jobs (completed, or moved to dead_jobs), its oldest remaining member
-- stops waiting. Both take a transaction-scoped advisory lock on (queue, group) and then look,
-- so concurrent enqueues and completions of one group are serialised and none is missed: under
-- READ COMMITTED each statement in the trigger sees what committed before it got the lock.
alter table :PGQ_SCHEMA.jobs
  add column group_waiting boolean not null default false,
  add constraint jobs_group_waiting check (not group_waiting or (group_key is not null and lease_token is null));

drop index :PGQ_SCHEMA.jobs_claim;
create index jobs_claim on :PGQ_SCHEMA.jobs (queue, priority, run_at, id) where locked_until is null and not group_waiting;

create function :PGQ_SCHEMA.group_job_enqueued() returns trigger
language plpgsql as $$
begin
  perform pg_advisory_xact_lock(hashtext(tg_table_schema || '.' || new.queue), hashtext(new.group_key));
  new.group_waiting := exists (
    select from :PGQ_SCHEMA.jobs j where j.queue = new.queue and j.group_key = new.group_key);
  return new;
end;
$$;

create trigger jobs_group_enqueued
  before insert on :PGQ_SCHEMA.jobs
  for each row when (new.group_key is not null)
  execute function :PGQ_SCHEMA.group_job_enqueued();

-- The next member is claimable at once, so wake the queue's workers as the insert trigger does.
create function :PGQ_SCHEMA.group_head_left() returns trigger
language plpgsql as $$
declare
  next_run_at timestamptz;
begin
  perform pg_advisory_xact_lock(hashtext(tg_table_schema || '.' || old.queue), hashtext(old.group_key));
  update :PGQ_SCHEMA.jobs j set group_waiting = false
  where j.id = (select min(m.id) from :PGQ_SCHEMA.jobs m where m.queue = old.queue and m.group_key = old.group_key)
    and j.group_waiting
  returning j.run_at into next_run_at;
  if next_run_at <= now() then
    perform pg_notify(tg_table_schema || '_jobs', old.queue);
  end if;
  return null;
end;
$$;

create trigger jobs_group_head_left
  after delete on :PGQ_SCHEMA.jobs
  for each row when (old.group_key is not null and not old.group_waiting)
  execute function :PGQ_SCHEMA.group_head_left();

-- A cron schedule. next_tick_at is the earliest tick that has not had its job yet. Whichever
-- worker's scheduler moves it forward inserts the tick's job in the same statement, with a
-- compare-and-set on the old value (src/scheduler.ts): the row lock makes that exactly one job
-- per tick however many workers race for it, and a worker that read a stale value inserts
-- nothing. last_tick_at is the tick of the last job enqueued, for operators.
create table :PGQ_SCHEMA.schedules (
  name         text primary key,
  cron         text not null,
  timezone     text not null default 'UTC',
  queue        text not null,
  payload      jsonb not null default 'null',
  -- After downtime: "latest" enqueues one job for the most recent missed tick, "none" none.
  catch_up     text not null default 'latest',
  next_tick_at timestamptz not null,
  last_tick_at timestamptz,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint schedules_name check (char_length(name) between 1 and 512),
  constraint schedules_queue_name check (char_length(queue) between 1 and 128 and queue !~ '[[:cntrl:]]'),
  constraint schedules_catch_up check (catch_up in ('latest', 'none')),
  constraint schedules_ticks_move_forward check (last_tick_at is null or last_tick_at < next_tick_at)
);

-- The scheduler's one query: the schedules due now, and when the next one comes due.
create index schedules_next_tick on :PGQ_SCHEMA.schedules (next_tick_at);

-- A RabbitMQ topic pattern as an anchored regular expression over '.' || topic: each word
-- becomes '\.word', "*" one word, "#" zero or more words; other characters are escaped.
-- Prefixing the topic with a dot gives every word the same shape, so "#" can match nothing
-- without special cases: "a.#" matches ".a", "#.a" matches ".a", "a.#.b" matches ".a.b".
create function :PGQ_SCHEMA.topic_regex(pattern text) returns text
language sql immutable strict parallel safe as $$
  select '^' || string_agg(
    case w.word
      when '#' then '(\.[^.]+)*'
      when '*' then '\.[^.]+'
      else '\.' || regexp_replace(w.word, '([^[:alnum:]_])', '\\\1', 'g')
    end, '' order by w.n) || '$'
  from unnest(string_to_array(pattern, '.')) with ordinality as w(word, n)
$$;

-- Which queue receives which topics. The regex is derived here, not by the client, so rows
-- inserted from psql route the same way.
create table :PGQ_SCHEMA.subscriptions (
  queue      text not null,
  pattern    text not null,
  regex      text not null generated always as (:PGQ_SCHEMA.topic_regex(pattern)) stored,
  created_at timestamptz not null default now(),
  primary key (queue, pattern),
  constraint subscriptions_queue_name check (char_length(queue) between 1 and 128 and queue !~ '[[:cntrl:]]'),
  -- dot-separated non-empty words; "*" and "#" only as whole words
  constraint subscriptions_pattern check (
    char_length(pattern) <= 255
    and pattern ~ '^[^.[:cntrl:]]+(\.[^.[:cntrl:]]+)*$'
    and pattern !~ '([^.]\*|\*[^.]|[^.]#|#[^.])')
);

-- The queues a topic is routed to: every queue with at least one matching pattern, once.
-- publish inserts one job per row of this in a single statement (src/topics.ts).
create function :PGQ_SCHEMA.subscribed_queues(topic text) returns setof text
language sql stable strict parallel safe as $$
  select distinct s.queue from :PGQ_SCHEMA.subscriptions s where '.' || topic ~ s.regex order by s.queue
$$;
