--! Previous: sha1:426d6dc30156dd7da7b988437777fe98773c6c26
--! Hash: sha1:c050ed44803a5cd3d05eee14723ea7b3f476b725
--! Message: group promotions say where they land

-- Issue 17: a promoted group member was announced only if its run_at was before now(), and
-- now() is when the finishing head's transaction began. In transaction mode that transaction is
-- the job's own, which may have begun before the member was enqueued: such a promotion went
-- unannounced, and a worker whose bound had passed the member's place (no margin while every
-- notification is heard) found it only at its once-a-minute audit. Every promotion is announced
-- now, against the clock rather than the transaction's start, and in the forms of migration
-- 000016, which say where the members land, so that a worker moves its bound back to exactly
-- there instead of walking from the head of the queue (under a held snapshot, a walk over every
-- dead entry, once per finished group head):
--   `queue\np<priority>@<ms>`        members that may run now; the oldest run_at of each priority;
--   `queue\n<due ms>\np<priority>@<ms>`  members still delayed: when the first comes due, and where.
create or replace function :PGQ_SCHEMA.group_head_left() returns trigger
language plpgsql as $$
declare
  key_limit integer;
  room integer;
  landing record;
  at timestamptz;
begin
  perform pg_advisory_xact_lock(hashtext(tg_table_schema || '.' || old.queue), hashtext(old.group_key));
  key_limit := coalesce((select s.key_concurrency from :PGQ_SCHEMA.queues s where s.queue = old.queue), 1);
  room := key_limit - (select count(*) from (
    select from :PGQ_SCHEMA.jobs m
    where m.queue = old.queue and m.group_key = old.group_key and not m.group_waiting limit key_limit) h);
  at := clock_timestamp();
  for landing in
    with promoted as (
      update :PGQ_SCHEMA.jobs j set group_waiting = false
      where j.id in (select m.id from :PGQ_SCHEMA.jobs m
                     where m.queue = old.queue and m.group_key = old.group_key and m.group_waiting
                     order by m.id limit greatest(room, 0))
      returning j.priority, j.run_at)
    select p.priority, min(p.run_at) as oldest, p.run_at > at as delayed
    from promoted p group by p.priority, p.run_at > at
  loop
    perform pg_notify(tg_table_schema || '_jobs',
                      old.queue
                      || case when landing.delayed
                              then E'\n' || ceil(extract(epoch from landing.oldest - at) * 1000)::bigint
                              else '' end
                      || E'\np' || landing.priority || '@' || floor(extract(epoch from landing.oldest) * 1000)::bigint);
  end loop;
  return null;
end;
$$;
