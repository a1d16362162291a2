--! Previous: sha1:352f6c044f1f630be83ce84a83114256f55d9f9e
--! Hash: sha1:e7d0067b59133dbcbb02c4c10a3d1bd093918c07
--! Message: claim bounds: notifications say what lands behind a worker's bound

-- Issue 17: a held snapshot (a long query, pg_dump, a forgotten BEGIN) keeps every claimed job's
-- old entry in jobs_claim, and a claim that starts at the head of the queue's range walks them
-- all. Workers now start each claim at a bound: just before the first live entry the previous
-- claim saw (src/worker/claim-bounds.ts). What may land behind it must say so in its
-- notification, so that the worker moves its bound back:
--   `queue\np<priority>`  a ready job of that priority (one notification per queue, priority
--                         and transaction, as before);
--   `queue\nrewind`       a ready job whose run_at is more than 2 s in the past (an explicit
--                         runAt, a backfill), or group members that may now run;
--   `queue\n<ms>`         delayed jobs, as before.
-- Workers of earlier versions read the first line as the queue and a second line that is not a
-- number as "now", so they keep waking up as before.
create or replace function :PGQ_SCHEMA.notify_ready() returns trigger
language plpgsql as $$
begin
  perform pg_notify(tg_table_schema || '_jobs',
                    n.queue || case when n.run_at < now() - interval '2 seconds' then E'\nrewind'
                                    else E'\np' || n.priority end)
  from new_jobs n where n.run_at <= now();
  if exists (select from new_jobs n where n.run_at > now()) then
    perform pg_notify(tg_table_schema || '_jobs',
                      later.queue || E'\n' || ceil(extract(epoch from later.due - now()) * 1000)::bigint)
    from (select n.queue, min(n.run_at) as due from new_jobs n where n.run_at > now() group by n.queue) later;
  end if;
  return null;
end;
$$;

-- A promoted group member keeps the run_at it was enqueued with, usually behind every bound.
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
    perform pg_notify(tg_table_schema || '_jobs', old.queue || E'\nrewind');
  end if;
  return null;
end;
$$;
