// The local cluster for the end-to-end tests: the `tether-cluster` binary
// (three replicas behind a real balancer on loopback), started and stopped
// from here, plus what the tests need to look inside it (replica URLs and
// process ids, metrics).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** This package's folder (the tests run from dist/test/). */
export const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** `TETHER_CLUSTER_BIN`, else the workspace's debug build (in `CARGO_TARGET_DIR` when set). */
export function clusterBin(): string {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(packageDir, "..", "..", process.env.CARGO_TARGET_DIR)
    : path.resolve(packageDir, "..", "..", "target");
  const bin = process.env.TETHER_CLUSTER_BIN ?? path.join(targetDir, "debug", "tether-cluster");
  if (!existsSync(bin)) {
    throw new Error(
      `tether-cluster not found at ${bin}: build it with \`cargo build --workspace --bins\` ` +
        "in the repository root (or set TETHER_CLUSTER_BIN)",
    );
  }
  return bin;
}

export interface Cluster {
  /** The MCP endpoint, through the balancer. */
  url: string;
  /** Each replica's own base URL (bypassing the balancer), by route. */
  replicas: Map<string, string>;
  /** Kills replica `route` at once (SIGKILL), as a crash would. */
  kill(route: string): void;
  /** `tether_misrouted_requests_total` of every replica still up, by route. */
  misrouted(): Promise<Map<string, number>>;
  /** The last lines the cluster wrote to stderr (its and the replicas' logs). */
  log(): string;
  /** SIGTERM, then SIGKILL (of it and its replicas) if it has not exited within a bound. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const LOG_LINES = 200;

export async function startCluster(args: { replicas: number; balancer: string }): Promise<Cluster> {
  const bin = clusterBin();
  const port = await freePort();
  const child = spawn(
    bin,
    ["--replicas", String(args.replicas), "--balancer", args.balancer, "--port", String(port)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  // Whatever happens to the test process, the cluster goes with it.
  const onExit = () => child.kill("SIGTERM");
  process.on("exit", onExit);

  const lines: string[] = [];
  const replicas = new Map<string, string>();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  createInterface({ input: child.stderr! }).on("line", (line) => {
    lines.push(line);
    if (lines.length > LOG_LINES) lines.shift();
    const m = /^replica (\S+) on (http:\/\/\S+)$/.exec(line);
    if (m) replicas.set(m[1]!, m[2]!);
  });
  const log = () => lines.join("\n");

  const stop = async () => {
    process.off("exit", onExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const pids = descendants(child.pid!);
    child.kill("SIGTERM");
    const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), STOP_TIMEOUT_MS).unref());
    if (!(await Promise.race([exited.then(() => true), timer]))) {
      for (const pid of [child.pid!, ...pids]) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await exited;
    }
  };

  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`tether-cluster printed no URL within ${START_TIMEOUT_MS} ms:\n${log()}`)),
        START_TIMEOUT_MS,
      );
      createInterface({ input: child.stdout! }).once("line", (line) => {
        clearTimeout(timer);
        resolve(line.trim());
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`tether-cluster exited (${code ?? signal}) before it was ready:\n${log()}`));
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    // Its stderr and stdout are two pipes: the replica lines may come last.
    const deadline = Date.now() + 5_000;
    while (replicas.size < args.replicas && Date.now() < deadline) await sleep(20);
    if (replicas.size < args.replicas) throw new Error(`tether-cluster named ${replicas.size} replicas:\n${log()}`);

    return {
      url,
      replicas,
      log,
      stop,
      kill(route: string) {
        const pid = replicaPid(child.pid!, route);
        process.kill(pid, "SIGKILL");
        replicas.delete(route);
      },
      async misrouted() {
        const out = new Map<string, number>();
        for (const [route, base] of replicas) {
          const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
          const m = /^tether_misrouted_requests_total(?:\{[^}]*\})?\s+(\d+)/m.exec(text);
          if (!m) throw new Error(`no tether_misrouted_requests_total in ${base}/metrics:\n${text}`);
          out.set(route, Number(m[1]));
        }
        return out;
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The pid of the `tether-server` child of `clusterPid` started with `--route <route>`. */
function replicaPid(clusterPid: number, route: string): number {
  for (const pid of descendants(clusterPid)) {
    const argv = readProc(pid, "cmdline")?.split("\0") ?? [];
    const i = argv.indexOf("--route");
    if (i >= 0 && argv[i + 1] === route) return pid;
  }
  throw new Error(`no process of the cluster runs replica ${route}`);
}

/** Every process below `root`, from /proc (Linux). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProc(Number(entry), "stat");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = stat ? Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) : NaN;
    if (!Number.isNaN(ppid)) parent.set(Number(entry), ppid);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [pid, ppid] of parent) {
      if (ppid === p) {
        out.push(pid);
        queue.push(pid);
      }
    }
  }
  return out;
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return undefined; // exited meanwhile
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
