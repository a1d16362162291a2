// Summarises a V8 CPU profile (from `node --cpu-prof`): the functions with the most self time,
// and the share of the run spent idle, in garbage collection and in each package.
//
//   node --cpu-prof --cpu-prof-dir /tmp/prof --import tsx bench/run.ts --reps 1 --only drain-tuned --systems "pgq lease"
//   node --import tsx bench/cpu-profile.ts /tmp/prof/*.cpuprofile [--top 25]
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ options: { top: { type: "string", default: "25" } }, allowPositionals: true });
if (positionals.length === 0) {
  console.error("cpu-profile: name a .cpuprofile file");
  process.exit(2);
}
for (const file of positionals) {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, k) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[k] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench)\//, "$1/");
    const key = `${functionName || "(anonymous)"}  ${where}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    byPackage.set(packageOf(functionName, url), (byPackage.get(packageOf(functionName, url)) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s sampled\n\nby package:`);
  for (const [name, us] of [...byPackage].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(us)}  ${name}`);
  console.log(`\ntop ${values.top} functions by self time:`);
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`  ${pct(us)}  ${name}`);
}

function packageOf(functionName: string, url: string): string {
  if (functionName === "(idle)" || functionName === "(garbage collector)" || functionName === "(program)") return functionName;
  if (!url) return "(native)";
  if (url.startsWith("node:")) return "node internals";
  const inModules = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (inModules) return inModules[1]!;
  const inRepo = url.match(/\/(src|bench)\/([^/]+)/);
  return inRepo ? `${inRepo[1]}/${inRepo[2]}` : url;
}
