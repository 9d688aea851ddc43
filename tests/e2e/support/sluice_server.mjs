// Starts the sluice binary named by SLUICE_BIN on a free loopback port, for one test file.
// The server runs on the demo database in a private temporary folder; stop() ends exactly
// that child process and removes the folder. A test process that exits or is interrupted
// first still kills its children, so no server outlives its tests.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const STDERR_LIMIT = 64 * 1024; // characters of the server's stderr kept for diagnostics
const READY_TIMEOUT_MS = 60_000; // the first start builds the demo database
const POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 1_000; // one GET /healthz
const STDERR_DRAIN_MS = 1_000; // after the child exits, for its last stderr bytes
const STOP_TIMEOUT_MS = 5_000; // after SIGTERM, before SIGKILL

export function sluiceBinary() {
  const bin = process.env.SLUICE_BIN;
  if (!bin) {
    throw new Error(
      'SLUICE_BIN is not set: point it at the sluice binary, e.g. ' +
        'SLUICE_BIN=build/debug-asan/gateway/sluice',
    );
  }
  return bin;
}

// A port that was free a moment ago; the server binds it right after.
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// What stop() has not cleaned up yet, for a process that ends before it runs.
const children = new Set();
const tempDirs = new Set();

function cleanUpNow() {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

process.on('exit', cleanUpNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    cleanUpNow();
    // The handler is gone now, so this ends the process the way the signal would have.
    process.kill(process.pid, signal);
  });
}

export class SluiceServer {
  #child = null;
  #exited = null; // resolves with {code, signal, error?} once the child has exited
  #closed = null; // resolves once its stderr is closed too
  #stderr = '';
  #dir = null;

  port = 0;

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  // The temporary folder holding the demo database.
  get dir() {
    return this.#dir;
  }

  // The server's stderr so far (the last STDERR_LIMIT characters).
  get stderr() {
    return this.#stderr;
  }

  // The stderr, labelled, for an error message.
  get stderrReport() {
    return this.#stderr ? `sluice stderr:\n${this.#stderr}` : 'sluice stderr: (empty)';
  }

  // Whether the child was started and has not exited.
  get running() {
    const child = this.#child;
    return Boolean(child?.pid) && child.exitCode === null && child.signalCode === null;
  }

  // How the child ended, e.g. "exit code 1" or "signal SIGABRT"; null while it runs.
  get exitDescription() {
    const child = this.#child;
    if (!child || this.running) return null;
    if (child.signalCode) return `signal ${child.signalCode}`;
    return child.exitCode === null ? 'not started' : `exit code ${child.exitCode}`;
  }

  // Starts the server and waits until GET /healthz answers 200. `args` follow --listen
  // and --demo-db; `env` adds SLUICE_* variables. Throws, with the server's stderr, if it
  // exits or is not ready in time; call stop() afterwards in either case.
  async start(args = [], extraEnv = {}) {
    const bin = sluiceBinary();
    this.#dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-e2e-'));
    tempDirs.add(this.#dir);
    this.port = await freePort();
    const argv = [
      '--listen',
      `127.0.0.1:${this.port}`,
      '--demo-db',
      path.join(this.#dir, 'demo.sqlite'),
      ...args,
    ];
    // sluice rejects SLUICE_* variables it does not know (typos must not pass silently), and
    // the harness's own SLUICE_BIN is one of them.
    const env = {
      ...Object.fromEntries(
        Object.entries(process.env).filter(([key]) => !key.startsWith('SLUICE_')),
      ),
      ...extraEnv,
    };
    const child = spawn(bin, argv, { stdio: ['ignore', 'ignore', 'pipe'], env });
    this.#child = child;
    children.add(child);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_LIMIT);
    });
    const spawnFailed = new Promise((resolve) => child.once('error', resolve));
    this.#exited = Promise.race([
      new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
      spawnFailed.then((error) => ({ code: null, signal: null, error })),
    ]).then((status) => {
      children.delete(child);
      return status;
    });
    this.#closed = Promise.race([
      new Promise((resolve) => child.stderr.once('close', resolve)),
      spawnFailed,
    ]);
    await this.#waitReady(`${bin} ${argv.join(' ')}`);
  }

  async #waitReady(commandLine) {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const exited = this.#exited.then((status) => ({ exited: status }));
    for (;;) {
      const probe = fetch(`${this.url}/healthz`, {
        signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      }).then(
        (response) => ({ status: response.status }),
        () => ({ status: 0 }),
      );
      const outcome = await Promise.race([exited, probe]);
      if (outcome.exited) {
        const { code, signal, error } = outcome.exited;
        const how = error ? error.message : signal ? `signal ${signal}` : `exit code ${code}`;
        await Promise.race([this.#closed, sleep(STDERR_DRAIN_MS, null, { ref: false })]);
        throw new Error(
          `sluice exited before /healthz answered (${how})\n` +
            `command: ${commandLine}\n${this.stderrReport}`,
        );
      }
      if (outcome.status === 200) return;
      if (Date.now() >= deadline) {
        throw new Error(
          `sluice did not answer GET /healthz with 200 within ${READY_TIMEOUT_MS / 1000} s` +
            ` (last status: ${outcome.status || 'no answer'})\n` +
            `command: ${commandLine}\n${this.stderrReport}`,
        );
      }
      await sleep(POLL_INTERVAL_MS);
    }
  }

  // Ends the child (SIGTERM, then SIGKILL if it lingers) and removes the temporary folder.
  // Safe to call when start() failed or never ran.
  async stop() {
    const child = this.#child;
    if (this.running) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([
        this.#exited.then(() => true),
        sleep(STOP_TIMEOUT_MS, null, { ref: false }).then(() => false),
      ]);
      if (!stopped) {
        child.kill('SIGKILL');
        await this.#exited;
      }
    }
    // A grandchild holding the pipe open must not keep this process alive.
    child?.stderr?.destroy();
    if (this.#dir) {
      await rm(this.#dir, { recursive: true, force: true });
      tempDirs.delete(this.#dir);
    }
  }
}
