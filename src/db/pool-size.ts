// Whether the pool a caller passed to connect() is large enough for a worker's handlers.
//
// A worker's own statements never wait on the caller's pool (client.ts gives each worker a pool
// of its own), but handlers may use it as q.sql. One that queries through it while holding one
// of its connections (inside q.sql.begin()) needs two at once: when every connection is held by
// such a handler, each waits for another and none is ever given back.

/** A warning naming what to set, or undefined when no running handlers can hold every connection. */
export function poolSizeWarning(poolMax: number, concurrency: number): string | undefined {
  const needed = concurrency + 1;
  if (poolMax >= needed) return undefined;
  return `the pool passed to connect() has max ${poolMax}, not more than the worker's concurrency ${concurrency}: `
    + `handlers that query through q.sql while holding one of its connections (inside q.sql.begin()) can wait on each other forever; `
    + `make it with max at least ${needed}, or query through ctx.sql, which has room for every job`;
}
