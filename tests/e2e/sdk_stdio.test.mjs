// sluice --stdio against a real client: the official SDK's StdioClientTransport launching
// the binary on the demo database, and a raw exchange without the SDK that checks the
// framing rules of /work/shared/MCP-PROTOCOL.md §6: stdout carries only JSON-RPC messages,
// one per line; a server/discover probe works as the very first line; garbage gets -32700
// with id null; notifications get no answer; the process exits on stdin EOF.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { sluiceBinary } from './support/sluice_server.mjs';

const TOOLS = [
  'list_databases',
  'list_schemas',
  'list_tables',
  'describe_table',
  'query',
  'explain',
  'execute',
  'set_context',
  'get_context',
];
const VERSION = '2026-07-28';
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': VERSION,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'sluice-e2e-stdio', version: '1.0.0' },
};
const EXIT_TIMEOUT_MS = 5_000; // after stdin EOF
const ANSWER_TIMEOUT_MS = 60_000; // the first start builds the demo database
const STDERR_LIMIT = 64 * 1024;

// The environment without SLUICE_* variables: sluice rejects those it does not know, and
// the harness's own SLUICE_BIN is one of them.
function sluiceEnv() {
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('SLUICE_')),
  );
}

// Temporary folders and children still to clean up if the test process ends early.
const tempDirs = new Set();
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function makeTempDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-e2e-stdio-'));
  tempDirs.add(dir);
  return dir;
}

async function removeTempDir(dir) {
  if (!dir) return;
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

function text(result) {
  return (result.content ?? [])
    .filter((block) => block.type === 'text')
    .map((block) => block.text)
    .join('\n');
}

sluiceBinary();

describe('@modelcontextprotocol/sdk over stdio', () => {
  let dir;
  let client;
  let transport;
  let child; // the ChildProcess, to see how it ended
  let stderr = '';
  let startup = null;

  const stderrReport = () => (stderr ? `sluice stderr:\n${stderr}` : 'sluice stderr: (empty)');
  const call = (name, args = {}) => client.callTool({ name, arguments: args });
  const serverTest = (name, fn) =>
    test(name, (t) => (startup ? t.skip('sluice did not start: see the first test') : fn(t)));

  before(async () => {
    dir = await makeTempDir();
    transport = new StdioClientTransport({
      command: sluiceBinary(),
      args: ['--stdio', '--demo-db', path.join(dir, 'demo.sqlite')],
      env: sluiceEnv(),
      stderr: 'pipe',
    });
    transport.stderr.setEncoding('utf8');
    transport.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-STDERR_LIMIT);
    });
    client = new Client({ name: 'sluice-e2e-stdio', version: '1.0.0' });
    try {
      await client.connect(transport, { timeout: ANSWER_TIMEOUT_MS });
      // The SDK keeps no public handle on the child; its field is the only way to see how
      // the process ended (exit code vs. signal).
      child = transport._process;
      if (child) children.add(child);
    } catch (error) {
      startup = new Error(`initialize failed: ${error.message}\n${stderrReport()}`, {
        cause: error,
      });
    }
  });

  after(async () => {
    try {
      await client?.close(); // a no-op when the last test has closed it already
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      children.delete(child);
      await removeTempDir(dir);
    }
  });

  test('initialize names the server and declares tools', () => {
    if (startup) throw startup;
    assert.equal(client.getServerVersion()?.name, 'sluice');
    assert.ok(client.getServerCapabilities()?.tools, 'the tools capability is missing');
  });

  serverTest('tools/list lists the seven database tools in order', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((tool) => tool.name),
      TOOLS,
    );
  });

  serverTest('query counts the orders', async () => {
    const result = await call('query', { sql: 'SELECT count(*) AS n FROM orders' });
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.deepEqual(
      result.structuredContent?.columns?.map((column) => column.name),
      ['n'],
    );
    assert.deepEqual(result.structuredContent.rows, [[15000]]);
  });

  serverTest('describe_table describes orders', async () => {
    const result = await call('describe_table', { table: 'orders' });
    assert.notEqual(result.isError, true, JSON.stringify(result));
    const sc = result.structuredContent;
    const nameIndex = sc.columns.findIndex((column) => column.name === 'name');
    assert.ok(nameIndex >= 0, JSON.stringify(sc.columns));
    assert.deepEqual(
      sc.rows.map((row) => row[nameIndex]),
      ['id', 'customer_id', 'ordered_at', 'status', 'total'],
    );
  });

  serverTest('a database error is an isError result', async () => {
    const result = await call('query', { sql: 'SELECT * FROM no_such_table' });
    assert.equal(result.isError, true, JSON.stringify(result));
    assert.match(text(result), /no_such_table/);
  });

  serverTest('an unknown tool is a JSON-RPC error -32602', async () => {
    await assert.rejects(call('nope'), (error) => {
      assert.ok(error instanceof McpError, `not an McpError: ${error}`);
      assert.equal(error.code, -32602);
      return true;
    });
  });

  // Last: it ends the process.
  serverTest('closing the client ends sluice on stdin EOF', async () => {
    assert.ok(child, 'no handle on the child process');
    const pid = child.pid;
    const started = performance.now();
    // close() ends stdin, waits up to 2 s for the exit, and only then sends SIGTERM.
    await client.close();
    const elapsed = performance.now() - started;
    assert.ok(
      elapsed < EXIT_TIMEOUT_MS,
      `close() took ${Math.round(elapsed)} ms\n${stderrReport()}`,
    );
    assert.equal(child.signalCode, null, `sluice was killed: ${child.signalCode}`);
    assert.equal(child.exitCode, 0, `sluice exit code ${child.exitCode}\n${stderrReport()}`);
    assert.ok(
      elapsed < 2_000,
      `sluice took ${Math.round(elapsed)} ms to exit, so the SDK had to send SIGTERM`,
    );
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid} is still alive`);
  });
});

describe('raw newline-delimited JSON-RPC over stdio', () => {
  let dir;
  let child;
  let stderr = '';
  let stdoutText = '';
  let exited; // resolves with {code, signal}
  const lines = []; // every stdout line, as sent
  const waiters = []; // {predicate, resolve}

  const stderrReport = () => (stderr ? `sluice stderr:\n${stderr}` : 'sluice stderr: (empty)');

  function onLine(line) {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.predicate()) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }

  // Waits until predicate() holds for the lines so far.
  async function waitFor(predicate, what, ms = ANSWER_TIMEOUT_MS) {
    if (predicate()) return;
    let timer;
    await Promise.race([
      new Promise((resolve) => waiters.push({ predicate, resolve })),
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `timed out waiting for ${what}; stdout so far:\n${lines.join('\n')}\n` +
                  stderrReport(),
              ),
            ),
          ms,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }

  const parsed = () =>
    lines.map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        return undefined;
      }
    });
  const responseTo = (id) =>
    parsed().find((m) => m && 'id' in m && m.id === id && ('result' in m || 'error' in m));

  const send = (line) => child.stdin.write(`${line}\n`);
  const sendJson = (message) => send(JSON.stringify(message));

  before(async () => {
    dir = await makeTempDir();
    child = spawn(sluiceBinary(), ['--stdio', '--demo-db', path.join(dir, 'demo.sqlite')], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: sluiceEnv(),
    });
    children.add(child);
    exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      }),
    );
    child.on('error', () => {}); // reported through `exited` and the assertions
    child.stdin.on('error', () => {}); // EPIPE if it dies; the assertions say so
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-STDERR_LIMIT);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdoutText += chunk;
      let newline;
      while ((newline = stdoutText.indexOf('\n')) >= 0) {
        const line = stdoutText.slice(0, newline);
        stdoutText = stdoutText.slice(newline + 1);
        onLine(line);
      }
    });
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await removeTempDir(dir);
  });

  test('a mixed conversation: only JSON-RPC on stdout, answers by id, exit on EOF', async () => {
    // 1. A modern probe as the very first line, before any initialize.
    sendJson({
      jsonrpc: '2.0',
      id: 'discover-1',
      method: 'server/discover',
      params: { _meta: MODERN_META },
    });
    // 2. A legacy initialize, then its notification (which gets no answer).
    sendJson({
      jsonrpc: '2.0',
      id: 2,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'sluice-e2e-raw', version: '1.0.0' },
      },
    });
    await waitFor(() => responseTo(2), 'the initialize response');
    sendJson({ jsonrpc: '2.0', method: 'notifications/initialized' });
    // 3. A ping, a legacy tools/call, garbage, a cancellation of an unknown id (a
    //    notification too), and a modern tools/call.
    sendJson({ jsonrpc: '2.0', id: 3, method: 'ping' });
    sendJson({
      jsonrpc: '2.0',
      id: 'call-4',
      method: 'tools/call',
      params: { name: 'query', arguments: { sql: 'SELECT count(*) AS n FROM orders' } },
    });
    send('{not json');
    sendJson({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 'never-sent', reason: 'test' },
    });
    sendJson({
      jsonrpc: '2.0',
      id: 6,
      method: 'tools/call',
      params: {
        _meta: MODERN_META,
        name: 'query',
        arguments: { sql: 'SELECT count(*) AS n FROM customers' },
      },
    });

    const ids = ['discover-1', 2, 3, 'call-4', 6];
    const garbageAnswered = () =>
      parsed().some((m) => m && m.id === null && m.error?.code === -32700);
    await waitFor(
      () => ids.every((id) => responseTo(id)) && garbageAnswered(),
      'answers to every request and to the garbage line',
    );

    // stdin EOF: the process ends by itself, promptly and cleanly.
    child.stdin.end();
    const started = performance.now();
    const status = await Promise.race([
      exited,
      sleep(EXIT_TIMEOUT_MS, null, { ref: false }).then(() => null),
    ]);
    assert.ok(
      status,
      `sluice still runs ${EXIT_TIMEOUT_MS} ms after stdin closed\n${stderrReport()}`,
    );
    assert.deepEqual(status, { code: 0, signal: null }, stderrReport());
    assert.ok(performance.now() - started < EXIT_TIMEOUT_MS);
    if (stdoutText) lines.push(stdoutText); // an unterminated last line is a framing error

    // Every stdout line is one JSON-RPC message; no logs, no requests from the server.
    for (const line of lines) {
      let message;
      assert.doesNotThrow(() => (message = JSON.parse(line)), `not JSON on stdout: ${line}`);
      assert.equal(message?.jsonrpc, '2.0', `not JSON-RPC 2.0: ${line}`);
      const isResponse = 'id' in message && ('result' in message || 'error' in message);
      const isNotification = !('id' in message) && typeof message.method === 'string';
      assert.ok(isResponse || isNotification, `neither a response nor a notification: ${line}`);
      if (isResponse) {
        assert.ok(
          !('result' in message && 'error' in message),
          `both result and error: ${line}`,
        );
      }
    }
    assert.equal(stdoutText, '', `stdout ended without a newline: ${stdoutText}`);
    assert.ok(lines.length > 0, `nothing on stdout\n${stderrReport()}`);

    // Exactly one answer per request and one for the garbage; none for the notifications.
    const messages = parsed();
    const responses = messages.filter((m) => 'id' in m);
    const dump = lines.join('\n');
    assert.equal(responses.length, ids.length + 1, `unexpected answers:\n${dump}`);
    for (const id of ids) {
      assert.equal(
        responses.filter((m) => m.id === id).length,
        1,
        `not exactly one answer to ${id}:\n${dump}`,
      );
    }

    const discover = responseTo('discover-1');
    assert.equal(discover.error, undefined, JSON.stringify(discover));
    assert.ok(discover.result.supportedVersions.includes(VERSION), JSON.stringify(discover));
    assert.ok(discover.result.capabilities?.tools, JSON.stringify(discover));
    assert.equal(discover.result.resultType, 'complete');
    assert.equal(discover.result._meta?.['io.modelcontextprotocol/serverInfo']?.name, 'sluice');

    const initialize = responseTo(2);
    assert.equal(initialize.result?.protocolVersion, '2025-11-25', JSON.stringify(initialize));
    assert.equal(initialize.result.serverInfo?.name, 'sluice');

    assert.deepEqual(responseTo(3).result, {}, 'ping');

    const legacyCall = responseTo('call-4');
    assert.notEqual(legacyCall.result?.isError, true, JSON.stringify(legacyCall));
    assert.deepEqual(legacyCall.result.structuredContent?.rows, [[15000]]);

    const modernCall = responseTo(6);
    assert.notEqual(modernCall.result?.isError, true, JSON.stringify(modernCall));
    assert.deepEqual(modernCall.result.structuredContent?.rows, [[5000]]);
    assert.equal(modernCall.result.resultType, 'complete');

    const garbage = messages.filter((m) => m.id === null);
    assert.equal(garbage.length, 1, `answers with id null:\n${dump}`);
    assert.equal(garbage[0].error?.code, -32700);
  });
});
