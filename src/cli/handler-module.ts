// Loading the module named by `pgq work --handler`: an ES module (or TypeScript, when pgq runs
// under tsx) whose default export is a handler or an object mapping queue names to handlers.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Handlers } from "../worker/settings.js";
import { UsageError } from "./errors.js";

export async function loadHandlers(path: string): Promise<Handlers> {
  const file = resolve(path);
  if (!existsSync(file)) throw new UsageError(`cannot load handler module ${path}: no such file`);
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_UNKNOWN_FILE_EXTENSION" && /\.[mc]?tsx?$/.test(file)) {
      throw new UsageError(`cannot load handler module ${path}: TypeScript needs tsx, as in \`npx tsx node_modules/.bin/pgq work ...\`, or compile it to JavaScript`);
    }
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new UsageError(`cannot load handler module ${path}: ${message.split("\n", 1)[0]}`);
  }
  const handlers = module.default;
  // Whether each queue has its handler is checked by q.work(), which knows the queues.
  if (typeof handlers === "function" || (handlers !== null && typeof handlers === "object" && !Array.isArray(handlers))) {
    return handlers as Handlers;
  }
  throw new UsageError(
    `handler module ${path} has no usable default export: export default an async function (job, ctx), or an object mapping queue names to such functions`,
  );
}
