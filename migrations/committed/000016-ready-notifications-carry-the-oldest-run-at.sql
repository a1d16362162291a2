--! Previous: sha1:34768aa5f3c1d422e263f445e0beadad472cae09
--! Hash: sha1:426d6dc30156dd7da7b988437777fe98773c6c26
--! Message: ready notifications carry the oldest run_at of their jobs

-- Issue 17: a worker's claim starts at a bound just before the first live entry it saw, less a
-- slack for producers whose transactions commit a little after their insert (now() is the
-- transaction's start, so such a job lands behind the bound). Under a held snapshot every claim
-- re-reads that slack's dead entries: 2 s of them, about 2,000 at 1,000 jobs/s. A ready
-- notification now says where its jobs landed, so a worker that hears it moves its bound back
-- to exactly there, and the slack can shrink to a margin:
--   `queue\np<priority>@<ms>`  ready jobs of that priority; the oldest run_at among them, in
--                              ms since the epoch, rounded down;
--   `queue\nrewind`            as before, for a run_at more than 2 s in the past, so that
--                              workers of the previous version still move back for a backfill;
--   `queue\n<ms>\np<priority>@<ms>`  delayed jobs: due in that many ms, as before, and where
--                              they will land. A delayed job of a higher priority than a
--                              worker's bound lands behind it, and was found only by a walk from
--                              the head (a rewind, or a worker's start), however long it waited.
-- One notification per queue and priority per statement (the statement's jobs usually share
-- one run_at, the transaction's now(), so a transaction's statements send the same one, which
-- PostgreSQL sends once). Workers of the previous version parse the new ready form as a priority
-- they cannot compare, so they treat it as an ordinary wake-up and their audit still looks
-- behind their bound: a late-committing job waits at most one audit (5 s) for them until they
-- upgrade; and they read the new delayed form as "ready now", so they find a delayed job at the
-- poll after it is due rather than at once.
create or replace function :PGQ_SCHEMA.notify_ready() returns trigger
language plpgsql as $$
begin
  perform pg_notify(tg_table_schema || '_jobs',
                    r.queue || case when r.oldest < now() - interval '2 seconds' then E'\nrewind'
                                    else E'\np' || r.priority || '@' || floor(extract(epoch from r.oldest) * 1000)::bigint end)
  from (select n.queue, n.priority, min(n.run_at) as oldest
        from new_jobs n where n.run_at <= now() group by n.queue, n.priority) r;
  if exists (select from new_jobs n where n.run_at > now()) then
    perform pg_notify(tg_table_schema || '_jobs',
                      later.queue || E'\n' || ceil(extract(epoch from later.due - now()) * 1000)::bigint
                      || E'\np' || later.priority || '@' || floor(extract(epoch from later.due) * 1000)::bigint)
    from (select n.queue, n.priority, min(n.run_at) as due
          from new_jobs n where n.run_at > now() group by n.queue, n.priority) later;
  end if;
  return null;
end;
$$;
