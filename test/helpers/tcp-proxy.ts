// A TCP proxy in front of PostgreSQL, to break connections the ways networks do: stall them
// (a half-open connection: sockets stay open, nothing gets through), or reset everything and
// turn new connections away (the database unreachable). Closed when the test file ends.
//
// It refuses with a reset (RST), as a host whose server is down does, and never with a clean
// close: postgres.js 3.4.9 reconnects in a zero-delay loop when a socket closes cleanly during
// its startup (porsager/postgres#1193), some 600 attempts a second here; not pgq's loop.
import { createServer, connect, type Socket } from "node:net";
import { after } from "node:test";

export interface TcpProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string;
  /** Connections accepted since the proxy started. */
  readonly accepted: number;
  /** Open connections stop forwarding in both directions, and stay open; new ones work. */
  stall(): void;
  /** Resets every connection, and each new one as soon as it is accepted. */
  refuse(): void;
  /** New connections are forwarded again. */
  restore(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  stalled: boolean;
}

export async function tcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const pairs = new Set<Pair>();
  let refusing = false;
  let accepted = 0;

  const server = createServer((client) => {
    accepted++;
    if (refusing) return void client.resetAndDestroy();
    const upstream = connect(Number(targetPort), hostname);
    const pair: Pair = { client, upstream, stalled: false };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // Stalled bytes are read and thrown away, as a network that lost the route would.
    client.on("data", (d) => void (pair.stalled || upstream.write(d)));
    upstream.on("data", (d) => void (pair.stalled || client.write(d)));
    for (const socket of [client, upstream]) socket.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;

  const proxy: TcpProxy = {
    port,
    url(url) {
      const u = new URL(url);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    get accepted() {
      return accepted;
    },
    stall() {
      for (const pair of pairs) pair.stalled = true;
    },
    refuse() {
      refusing = true;
      for (const pair of [...pairs]) {
        pair.client.resetAndDestroy();
        pair.upstream.resetAndDestroy();
      }
    },
    restore() {
      refusing = false;
    },
    async close() {
      proxy.refuse();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  after(() => proxy.close());
  return proxy;
}
