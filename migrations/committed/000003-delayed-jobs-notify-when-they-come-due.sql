--! Previous: sha1:7c94510359be4158747c6aeabeb27029627bf79a
--! Hash: sha1:6e31c7c4862181adfbabfadebee3de2a492e0216
--! Message: delayed jobs notify when they come due

-- Delayed jobs wake idle workers when they come due. 000001 notified only jobs that were ready
-- at once, so a worker learnt of a delayed job only at its next poll. Now a statement that
-- inserts jobs that are not due yet also notifies their queue, with a newline and how many ms
-- from now the earliest of them comes due: relative, so the worker's own clock never matters,
-- and still one tiny notification per queue and statement.
create or replace function :PGQ_SCHEMA.notify_ready() returns trigger
language plpgsql as $$
begin
  perform pg_notify(tg_table_schema || '_jobs', ready.queue)
  from (select distinct queue from new_jobs where run_at <= now()) ready;
  perform pg_notify(tg_table_schema || '_jobs',
                    later.queue || E'\n' || ceil(extract(epoch from later.due - now()) * 1000)::bigint)
  from (select queue, min(run_at) as due from new_jobs where run_at > now() group by queue) later;
  return null;
end;
$$;
