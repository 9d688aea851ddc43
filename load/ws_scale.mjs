#!/usr/bin/env node
// WebSocket scale check for sluice: opens many concurrent MCP sessions over WebSocket, has
// each call tools/call query at a steady rate, and reports errors, latencies and the
// server's memory per session as one JSON line. Exits 1 on any error or timeout.
//
//   tests/e2e/node_modules/.bin/node load/ws_scale.mjs \
//     --url ws://127.0.0.1:8080/mcp --sessions 200 --seconds 20 --rate 1 --pid <sluice pid>
//
// Options:
//   --url URL              the MCP WebSocket endpoint (required)
//   --sessions N           concurrent sessions (default 100)
//   --seconds S            how long the calls run after all sessions are open (default 10)
//   --rate R               calls per session per second (default 1); each gap is 1/R s
//                          with +-50 % jitter, so the sessions do not call in lockstep
//   --pid PID              the server's process id: its VmRSS is read from
//                          /proc/PID/status before and after the sessions open (and
//                          sampled for the peak), its CPU time from /proc/PID/stat
//   --sql SQL              the statement each call runs (default SELECT 1)
//   --timeout-ms MS        a call (or a handshake) without an answer by then is a timeout
//                          (default 10000)
//   --open-concurrency K   handshakes in flight while opening (default 100)
//   --settle-ms MS         pause after opening before the memory reading (default 1000)
//   --burst B              instead of the steady rate: each session sends B calls at once
//                          and waits for their answers (a backlog test; --seconds and
//                          --rate are then ignored)
//
// Each session is one raw WebSocket with the subprotocol mcp: initialize,
// notifications/initialized, then the calls. A call fails on a JSON-RPC error, an isError
// result, no structuredContent, no answer within --timeout-ms, or a socket the server
// closed; the exit status is 1 if any call or handshake failed, 2 on bad arguments.
// Latency percentiles are over the successful calls, measured in this process from send to
// answer, so they include this process's own event-loop delay; run it on a machine with a
// spare core for meaningful tails. Memory per session is (VmRSS after opening - VmRSS
// before) / sessions opened: use a freshly started server, as memory an earlier run made
// the server take is not given back.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// `ws` lives with the end-to-end tests' pinned Node packages.
const e2eDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'e2e');
const WebSocket = createRequire(path.join(e2eDir, 'package.json'))('ws');

const USAGE =
  'usage: ws_scale.mjs --url ws://HOST:PORT/mcp [--sessions N] [--seconds S] [--rate R] ' +
  '[--pid PID] [--sql SQL] [--timeout-ms MS] [--open-concurrency K] [--settle-ms MS] [--burst B]';

function parseArgs(argv) {
  const options = {
    url: null,
    sessions: 100,
    seconds: 10,
    rate: 1,
    pid: null,
    sql: 'SELECT 1',
    timeoutMs: 10_000,
    openConcurrency: 100,
    settleMs: 1_000,
    burst: 0,
  };
  const numeric = {
    '--sessions': 'sessions',
    '--seconds': 'seconds',
    '--rate': 'rate',
    '--pid': 'pid',
    '--timeout-ms': 'timeoutMs',
    '--open-concurrency': 'openConcurrency',
    '--settle-ms': 'settleMs',
    '--burst': 'burst',
  };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s, 2);
    if (flag === '-h' || flag === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (value === undefined) value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--url') options.url = value;
    else if (flag === '--sql') options.sql = value;
    else if (numeric[flag]) {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: not a number: ${value}`);
      options[numeric[flag]] = n;
    } else {
      throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  if (!options.url) throw new Error(`--url is required\n${USAGE}`);
  if (!(options.rate > 0)) throw new Error('--rate must be above 0');
  if (!(options.sessions >= 1)) throw new Error('--sessions must be at least 1');
  options.sessions = Math.floor(options.sessions);
  options.openConcurrency = Math.max(1, Math.floor(options.openConcurrency));
  return options;
}

// The server's resident set size in KiB, or null without --pid.
function rssKiB(pid) {
  if (!pid) return null;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

// The server's CPU time (user + system) in seconds, or null without --pid.
function cpuSeconds(pid) {
  if (!pid) return null;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return round(sorted[Math.max(0, index)]);
}

const round = (x) => Math.round(x * 100) / 100;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Counters shared by all sessions.
const stats = {
  openErrors: 0,
  calls: 0,
  ok: 0,
  errors: 0, // JSON-RPC errors, isError results, wrong rows
  timeouts: 0,
  unexpectedCloses: 0, // a socket the server closed while the run went on
  latencies: [],
  samples: [], // the first few problems, for the report
};

function problem(kind, detail) {
  if (stats.samples.length < 10) stats.samples.push({ kind, detail: String(detail).slice(0, 300) });
}

class Session {
  #ws = null;
  #nextId = 1;
  #pending = new Map(); // id -> {resolve, timer}
  #closing = false;

  // Each virtual session is its own client (its own name), as separate agents would be:
  // per-client limits and fairness then treat them as the gateway treats real clients.
  constructor(options, index) {
    this.options = options;
    this.name = `sluice-ws-scale-${index}`;
  }

  // Connects and initializes; resolves true, or false after counting the failure.
  async open() {
    const { url, timeoutMs } = this.options;
    try {
      await new Promise((resolve, reject) => {
        const ws = new WebSocket(url, ['mcp'], {
          perMessageDeflate: false,
          handshakeTimeout: timeoutMs,
        });
        this.#ws = ws;
        ws.once('open', () => {
          if (ws.protocol !== 'mcp') reject(new Error(`subprotocol "${ws.protocol}"`));
          else resolve();
        });
        ws.once('error', reject);
        ws.once('unexpected-response', (request, response) => {
          response.resume();
          reject(new Error(`upgrade refused with HTTP ${response.statusCode}`));
        });
        ws.on('message', (data) => this.#onMessage(data));
        ws.on('close', (code) => this.#onClose(code));
      });
      const answer = await this.request('initialize', {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: this.name, version: '1.0.0' },
      });
      if (!answer.result?.protocolVersion) throw new Error(`initialize: ${JSON.stringify(answer)}`);
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      return true;
    } catch (error) {
      stats.openErrors++;
      problem('open', error.message ?? error);
      this.#closing = true; // counted here, not again as an unexpected close
      this.#ws?.terminate();
      return false;
    }
  }

  #onMessage(data) {
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch {
      stats.errors++;
      problem('unparsable', data.toString());
      return;
    }
    const waiter = this.#pending.get(message.id);
    if (!waiter) return; // a notification, or an answer after its timeout
    this.#pending.delete(message.id);
    clearTimeout(waiter.timer);
    waiter.resolve(message);
  }

  #onClose(code) {
    if (!this.#closing) {
      stats.unexpectedCloses++;
      problem('closed', `close code ${code}`);
    }
    for (const [id, waiter] of this.#pending) {
      clearTimeout(waiter.timer);
      waiter.resolve({ id, closed: code });
    }
    this.#pending.clear();
  }

  // Sends a request; resolves with its answer, {timeout: true}, or {closed: code}.
  request(method, params) {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      if (this.#ws.readyState !== WebSocket.OPEN) {
        resolve({ id, closed: 'not open' });
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve({ id, timeout: true });
      }, this.options.timeoutMs);
      this.#pending.set(id, { resolve, timer });
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  async call() {
    stats.calls++;
    const started = performance.now();
    const answer = await this.request('tools/call', {
      name: 'query',
      arguments: { sql: this.options.sql },
    });
    const elapsed = performance.now() - started;
    if (answer.timeout) {
      stats.timeouts++;
      problem('timeout', `id ${answer.id} after ${this.options.timeoutMs} ms`);
    } else if (answer.closed !== undefined) {
      stats.errors++;
      problem('closed-during-call', `id ${answer.id}: ${answer.closed}`);
    } else if (answer.error || answer.result?.isError || !answer.result?.structuredContent) {
      stats.errors++;
      problem('error', JSON.stringify(answer));
    } else {
      stats.ok++;
      stats.latencies.push(elapsed);
    }
  }

  // Calls every 1/rate s (+-50 % jitter) until `endAt`; waits for the calls in flight.
  async run(endAt) {
    const gapMs = 1000 / this.options.rate;
    const inFlight = new Set();
    await sleep(Math.random() * gapMs); // spread the sessions' first calls
    while (performance.now() < endAt && this.#ws.readyState === WebSocket.OPEN) {
      const call = this.call().finally(() => inFlight.delete(call));
      inFlight.add(call);
      await sleep(gapMs * (0.5 + Math.random()));
    }
    await Promise.all(inFlight);
  }

  // Sends `count` calls at once (yielding to the event loop now and then, so answers are
  // read meanwhile) and waits for all of them.
  async burst(count) {
    const calls = [];
    for (let i = 0; i < count && this.#ws.readyState === WebSocket.OPEN; i++) {
      calls.push(this.call());
      if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(calls);
  }

  close() {
    this.#closing = true;
    if (this.#ws.readyState !== WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#ws.terminate();
        resolve();
      }, 5_000);
      this.#ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#ws.close(1000);
    });
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const before = rssKiB(options.pid);
  const rss = { beforeKiB: before, afterOpenKiB: null, afterRunKiB: null, peakKiB: before };
  const sampleRss = () => {
    try {
      const now = rssKiB(options.pid);
      if (now !== null) rss.peakKiB = Math.max(rss.peakKiB, now);
      return now;
    } catch (error) {
      problem('rss', error.message);
      return null;
    }
  };
  const rssTimer = options.pid ? setInterval(sampleRss, 500) : null;

  // Open the sessions, at most openConcurrency handshakes at a time.
  const sessions = Array.from({ length: options.sessions }, (_, i) => new Session(options, i));
  const openStarted = performance.now();
  const opened = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(options.openConcurrency, sessions.length) }, async () => {
      while (next < sessions.length) {
        const session = sessions[next++];
        if (await session.open()) opened.push(session);
      }
    }),
  );
  const openMs = performance.now() - openStarted;
  await sleep(options.settleMs);
  rss.afterOpenKiB = sampleRss();

  // The calls.
  const cpuBefore = cpuSeconds(options.pid);
  const runStarted = performance.now();
  const endAt = runStarted + options.seconds * 1000;
  await Promise.all(
    opened.map((session) =>
      options.burst > 0 ? session.burst(Math.floor(options.burst)) : session.run(endAt),
    ),
  );
  const runMs = performance.now() - runStarted;
  const cpuAfter = cpuSeconds(options.pid);
  rss.afterRunKiB = sampleRss();

  await Promise.all(opened.map((session) => session.close()));
  if (rssTimer) clearInterval(rssTimer);

  const sorted = stats.latencies.sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((sum, x) => sum + x, 0) / sorted.length : null;
  const perSession = (kib) =>
    rss.beforeKiB !== null && kib !== null && opened.length
      ? round((kib - rss.beforeKiB) / opened.length)
      : null;
  const failures = stats.openErrors + stats.errors + stats.timeouts + stats.unexpectedCloses;
  const summary = {
    url: options.url,
    sessions: options.sessions,
    opened: opened.length,
    seconds: options.seconds,
    rate: options.rate,
    burst: options.burst || undefined,
    sql: options.sql,
    openMs: Math.round(openMs),
    runMs: Math.round(runMs),
    calls: stats.calls,
    ok: stats.ok,
    errors: stats.errors,
    timeouts: stats.timeouts,
    openErrors: stats.openErrors,
    unexpectedCloses: stats.unexpectedCloses,
    callsPerSecond: round(stats.calls / (runMs / 1000)),
    latencyMs: {
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted.length ? round(sorted[sorted.length - 1]) : null,
      mean: mean === null ? null : round(mean),
    },
    serverCpu:
      cpuBefore === null
        ? null
        : {
            seconds: round(cpuAfter - cpuBefore),
            // of the run, per call sent; calls still queued at the end are not in it
            msPerCall: stats.calls ? round(((cpuAfter - cpuBefore) * 1000) / stats.calls) : null,
          },
    rss: {
      pid: options.pid,
      ...rss,
      perSessionKiB: perSession(rss.afterOpenKiB),
      perSessionAfterRunKiB: perSession(rss.afterRunKiB),
    },
    problems: stats.samples,
    pass: failures === 0,
  };
  console.log(JSON.stringify(summary));
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(error.message ?? error);
  process.exitCode = 2;
});
