// A job's state, defined once. No column stores it: it is read from a row of pgq.jobs, and each
// state below is a predicate on that row, aliased `j`, for the claim, inspect(), stats() and
// anything else that picks or counts jobs by state to embed as written. Every live job is in
// exactly one state:
//
//   ready      a claim may take it now
//   scheduled  waits for its run_at before its first attempt, or for the job ahead of it in its group
//   retrying   waits for its backoff after a failed attempt
//   running    leased by a worker (a lapsed lease counts until the rescue hands the job back)
//
// A job waiting behind its group's head is scheduled, whatever its run_at and attempts: no claim
// can take it until the head leaves (migration 000002), so counting it as ready would show a
// backlog that idle workers cannot reach and age the oldest ready job while nothing is late;
// like a scheduled job, it runs once something outside the workers' hands has happened.
// Dead jobs are not a state of a row here: they are the rows of pgq.dead_jobs. Finished jobs
// are the rows of pgq.history, each with its final state (FINAL_STATES) in a column.
//
// A partial index serves a query only when the query's WHERE clause spells out the index's own
// predicate, so each predicate says which index walks it, and QUEUED is jobs_claim's predicate
// word for word: a query that drops a part of it (say, asks for `locked_until is null` alone)
// falls back to reading the whole table.

/** Neither leased nor waiting for its group's head: exactly the rows the partial index jobs_claim holds. */
export const QUEUED = "j.locked_until is null and not j.group_waiting";

/** Waiting for its group's head (never leased: constraint jobs_group_waiting), along jobs_group. */
export const GROUP_WAITING = "j.group_key is not null and j.group_waiting";

/** Along jobs_claim, in (queue, priority, run_at, id) order: the claim's predicate. */
export const READY = `${QUEUED} and j.run_at <= now()`;

/** Along jobs_claim, past now() in run_at, with the attempts read from the row. */
export const RETRYING = `${QUEUED} and j.run_at > now() and j.attempts > 0`;

/** Two disjoint parts: not yet due, from jobs_claim; behind a group's head, from jobs_group. */
export const SCHEDULED = `((${QUEUED} and j.run_at > now() and j.attempts = 0) or (${GROUP_WAITING}))`;

/** Along jobs_leased, whose rows are the jobs running now: as many as workers have slots. */
export const RUNNING = "j.locked_until is not null";

export const JOB_STATES = { ready: READY, scheduled: SCHEDULED, running: RUNNING, retrying: RETRYING } as const;

export type JobState = keyof typeof JOB_STATES;

/**
 * The state of a row `j` of pgq.jobs, as a SQL expression, for lists that show each job's state.
 * The tests above decide it in this order: a leased job is running whatever its run_at, and a job
 * behind its group's head is scheduled whatever its attempts.
 */
export const STATE_OF = `case when ${RUNNING} then 'running' when ${GROUP_WAITING} then 'scheduled'
  when ${READY} then 'ready' when ${RETRYING} then 'retrying' else 'scheduled' end`;

/** How a job ended, as pgq.history's state column spells it (constraint history_state). */
export const FINAL_STATES = ["completed", "dead", "cancelled", "expired"] as const;

export type FinalState = (typeof FINAL_STATES)[number];

/** Where a job is in its life, wherever it is: pgq.jobs, pgq.history or pgq.dead_jobs. */
export type AnyJobState = JobState | FinalState;

