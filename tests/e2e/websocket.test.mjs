// MCP over WebSocket (/work/shared/MCP-PROTOCOL.md §5) against a real sluice on the demo
// database: the official SDK's WebSocketClientTransport, and raw frames through the `ws`
// package for what the SDK cannot show: the handshake (subprotocol `mcp`, 400 without it,
// 403 for a foreign Origin), framing errors (-32700 keeps the socket, binary → 1003, too
// big → 1009), concurrent requests on one socket, cancellation with
// notifications/cancelled and by closing the socket, and modern-era frames.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import WebSocket from 'ws';

import { SluiceServer, sluiceBinary } from './support/sluice_server.mjs';

const SUBPROTOCOL = 'mcp';
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
const MODERN_VERSION = '2026-07-28';
const LEGACY_VERSION = '2025-11-25';
const CLIENT_INFO = { name: 'sluice-e2e-websocket', version: '1.0.0' };
// Runs in SQLite until it is interrupted: a recursive CTE without an end.
const ENDLESS_SQL =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c';
// A recursive CTE that stops after `rows` rows: slow, but finite.
const countingSql = (rows) =>
  `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT ${rows}) ` +
  'SELECT count(*) FROM c';
const POOL_SIZE = 4; // the demo source's pool
const QUICK_MS = 5_000; // "promptly": a simple query after cancellations
const REPLY_MS = 30_000; // how long any one answer may take before a test gives up
const SLOW_TARGET_MS = 1_500; // how long the "slow" query of the concurrency test should run
const TEST_TIMEOUT = { timeout: 120_000 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// A deadline for Promise.race that does not keep the process alive once the race is over.
const deadline = (ms, value) =>
  new Promise((resolve) => setTimeout(resolve, ms, value).unref());

function text(result) {
  return (result.content ?? [])
    .filter((block) => block.type === 'text')
    .map((block) => block.text)
    .join('\n');
}

// The _meta of a modern (2026-07-28) request.
function modernMeta() {
  return {
    'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
    'io.modelcontextprotocol/clientCapabilities': {},
    'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
  };
}

// One raw WebSocket to sluice: JSON-RPC messages in text frames, answers matched by id.
class RawSocket {
  #ws;
  #waiters = new Map(); // id -> {resolve, reject, timer}, for answers not yet received
  #answers = new Map(); // id -> answer received that no one waited for yet
  #nextId = 1;

  messages = []; // every message received, in order: {at, message} (at = performance.now())
  closed; // resolves with {code, reason} once the socket is closed

  constructor(ws) {
    this.#ws = ws;
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const [id, waiter] of this.#waiters) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`the socket closed (${code}) before the answer to id ${id}`));
        }
        this.#waiters.clear();
      }),
    );
    ws.on('message', (data, isBinary) => {
      const raw = data.toString();
      let message;
      try {
        message = JSON.parse(raw);
      } catch {
        message = { unparsable: raw, isBinary };
      }
      this.messages.push({ at: performance.now(), message });
      if (message.id === undefined || message.method !== undefined) return; // not an answer
      const waiter = this.#waiters.get(message.id);
      if (waiter) {
        this.#waiters.delete(message.id);
        clearTimeout(waiter.timer);
        waiter.resolve(message);
      } else {
        this.#answers.set(message.id, message);
      }
    });
  }

  // Opens a socket offering `protocols`; resolves once it is open, rejects on an error.
  static open(url, { protocols = [SUBPROTOCOL], ...options } = {}) {
    const ws = new WebSocket(url, protocols, options);
    const socket = new RawSocket(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(socket));
      ws.once('error', reject);
      ws.once('unexpected-response', (request, response) => {
        reject(new Error(`the upgrade was refused with HTTP ${response.statusCode}`));
        response.resume();
      });
    });
  }

  get ws() {
    return this.#ws;
  }

  get protocol() {
    return this.#ws.protocol;
  }

  // Sends a message (an object as JSON) or a string / Buffer as it is.
  send(message, options) {
    const data =
      typeof message === 'object' && !Buffer.isBuffer(message) ? JSON.stringify(message) : message;
    this.#ws.send(data, options);
  }

  newId() {
    return this.#nextId++;
  }

  // Waits for the answer with this id; rejects after `timeoutMs`.
  answer(id, timeoutMs = REPLY_MS) {
    const early = this.#answers.get(id);
    if (early) {
      this.#answers.delete(id);
      return Promise.resolve(early);
    }
    if (this.#ws.readyState === WebSocket.CLOSED) {
      return Promise.reject(new Error(`the socket is closed: no answer to id ${id}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new Error(`no answer to id ${JSON.stringify(id)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(id, { resolve, reject, timer });
    });
  }

  // Sends a request and returns its id; answer(id) waits for the response.
  sendRequest(method, params, id = this.newId()) {
    const message = { jsonrpc: '2.0', id, method };
    if (params !== undefined) message.params = params;
    this.send(message);
    return id;
  }

  // Sends a request and waits for its answer.
  request(method, params, timeoutMs) {
    return this.answer(this.sendRequest(method, params), timeoutMs);
  }

  notify(method, params) {
    const message = { jsonrpc: '2.0', method };
    if (params !== undefined) message.params = params;
    this.send(message);
  }

  // The legacy handshake: initialize, then notifications/initialized.
  async initialize() {
    const answer = await this.request('initialize', {
      protocolVersion: LEGACY_VERSION,
      capabilities: {},
      clientInfo: CLIENT_INFO,
    });
    assert.equal(answer.error, undefined, JSON.stringify(answer));
    assert.equal(answer.result?.serverInfo?.name, 'sluice', JSON.stringify(answer));
    this.notify('notifications/initialized');
    return answer.result;
  }

  // tools/call query; returns the request id.
  sendQuery(sql, args = {}, id) {
    return this.sendRequest('tools/call', { name: 'query', arguments: { sql, ...args } }, id);
  }

  // Runs `SELECT <n> AS v` and asserts that it answers with n within QUICK_MS.
  async quickQuery(n = 1) {
    const started = performance.now();
    const id = this.sendQuery(`SELECT ${n} AS v`);
    const answer = await this.answer(id, QUICK_MS + 5_000);
    const elapsed = performance.now() - started;
    assert.deepEqual(answer.result?.structuredContent?.rows, [[n]], JSON.stringify(answer));
    assert.ok(elapsed < QUICK_MS, `SELECT ${n} took ${Math.round(elapsed)} ms`);
    return elapsed;
  }

  close() {
    this.#ws.close();
    return this.closed;
  }

  terminate() {
    this.#ws.terminate();
  }
}

// Tries an upgrade that should be refused; resolves with {status, headers, body} of the
// HTTP answer, or rejects if the socket opens or fails otherwise.
function refusedUpgrade(url, protocols, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`the upgrade was accepted (subprotocol "${ws.protocol}")`));
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode, headers: response.headers, body });
        request.destroy();
      });
    });
  });
}

sluiceBinary();

describe('MCP over WebSocket', () => {
  const server = new SluiceServer();
  let startup = null;
  let wsUrl;
  const sockets = new Set(); // raw sockets still to close after the tests

  const serverTest = (name, options, fn) => {
    if (typeof options === 'function') [fn, options] = [options, {}];
    return test(name, { ...TEST_TIMEOUT, ...options }, (t) =>
      startup ? t.skip('sluice did not start: see the first test') : fn(t),
    );
  };

  async function open(options) {
    const socket = await RawSocket.open(wsUrl, options);
    sockets.add(socket);
    return socket;
  }

  before(async () => {
    try {
      // These tests drive one client far past the default per-client limits on purpose (2,000
      // pipelined queries) to test the transport's own backpressure; the limits themselves
      // are tested in the integration suite.
      await server.start([], { SLUICE_RATE_LIMIT: '0', SLUICE_MAX_IN_FLIGHT: '0' });
      wsUrl = `ws://127.0.0.1:${server.port}/mcp`;
    } catch (error) {
      startup = error;
    }
  });

  after(async () => {
    for (const socket of sockets) socket.terminate();
    const crashed = !startup && !server.running;
    await server.stop();
    if (crashed) {
      throw new Error(
        `sluice ended during the tests (${server.exitDescription})\n${server.stderrReport}`,
      );
    }
  });

  test('sluice starts', () => {
    if (startup) throw startup;
  });

  describe('@modelcontextprotocol/sdk WebSocketClientTransport', () => {
    let client;
    let transport;
    let connectError = null;
    let closedByTransport = null;

    const sdkTest = (name, fn) =>
      serverTest(name, (t) =>
        connectError ? Promise.reject(connectError) : fn(t),
      );

    before(async () => {
      if (startup) return;
      client = new Client(CLIENT_INFO);
      transport = new WebSocketClientTransport(new URL(wsUrl));
      closedByTransport = new Promise((resolve) => {
        client.onclose = resolve;
      });
      try {
        await client.connect(transport);
      } catch (error) {
        connectError = new Error(
          `connect failed: ${error?.message ?? error}\n${server.stderrReport}`,
          { cause: error },
        );
      }
    });

    after(async () => {
      await client?.close();
    });

    sdkTest('initialize names the server and declares tools', () => {
      assert.equal(client.getServerVersion()?.name, 'sluice');
      assert.ok(client.getServerCapabilities()?.tools, 'the tools capability is missing');
    });

    sdkTest('listTools lists the seven tools', async () => {
      const { tools } = await client.listTools();
      assert.deepEqual(
        tools.map((tool) => tool.name),
        TOOLS,
      );
      for (const tool of tools) {
        assert.equal(tool.inputSchema?.type, 'object', `${tool.name}: inputSchema`);
      }
    });

    sdkTest('callTool query counts the orders', async () => {
      const result = await client.callTool({
        name: 'query',
        arguments: { sql: 'SELECT count(*) AS n FROM orders' },
      });
      assert.notEqual(result.isError, true, JSON.stringify(result));
      assert.equal(result.content?.[0]?.type, 'text');
      assert.deepEqual(
        result.structuredContent?.columns?.map((column) => column.name),
        ['n'],
      );
      assert.deepEqual(result.structuredContent.rows, [[15000]]);
      assert.equal(result.resultType, undefined, 'a legacy result carries no resultType');
    });

    sdkTest('callTool describe_table describes orders', async () => {
      const result = await client.callTool({
        name: 'describe_table',
        arguments: { table: 'orders' },
      });
      assert.notEqual(result.isError, true, JSON.stringify(result));
      const sc = result.structuredContent;
      const name = sc.columns.findIndex((column) => column.name === 'name');
      assert.ok(name >= 0, JSON.stringify(sc.columns));
      assert.deepEqual(
        sc.rows.map((row) => row[name]),
        ['id', 'customer_id', 'ordered_at', 'status', 'total'],
      );
    });

    sdkTest('a database error is an isError result', async () => {
      const result = await client.callTool({
        name: 'query',
        arguments: { sql: 'SELECT * FROM no_such_table' },
      });
      assert.equal(result.isError, true, JSON.stringify(result));
      assert.match(text(result), /no_such_table/);
    });

    sdkTest('an unknown tool is a JSON-RPC error -32602', async () => {
      await assert.rejects(client.callTool({ name: 'nope', arguments: {} }), (error) => {
        assert.ok(error instanceof McpError, `not an McpError: ${error}`);
        assert.equal(error.code, -32602);
        return true;
      });
    });

    sdkTest('ping answers', async () => {
      assert.deepEqual(await client.ping(), {});
    });

    sdkTest('close ends the socket', async () => {
      await client.close();
      const closed = await Promise.race([
        closedByTransport.then(() => true),
        deadline(5_000, false),
      ]);
      assert.ok(closed, 'the transport did not report the close within 5 s');
    });
  });

  describe('handshake', () => {
    serverTest('the 101 echoes the subprotocol mcp', async () => {
      const ws = new WebSocket(wsUrl, [SUBPROTOCOL]);
      const upgrade = new Promise((resolve) => ws.once('upgrade', resolve));
      const socket = new RawSocket(ws);
      sockets.add(socket);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const response = await upgrade;
      assert.equal(response.statusCode, 101);
      assert.equal(response.headers['sec-websocket-protocol'], SUBPROTOCOL);
      assert.equal(socket.protocol, SUBPROTOCOL);
      const answer = await socket.request('ping');
      assert.deepEqual(answer.result, {}, JSON.stringify(answer));
      await socket.close();
    });

    serverTest('mcp is chosen from several offered subprotocols', async () => {
      const socket = await open({ protocols: ['foo', SUBPROTOCOL] });
      assert.equal(socket.protocol, SUBPROTOCOL);
      await socket.close();
    });

    serverTest('an upgrade offering only foo is refused with 400', async () => {
      const answer = await refusedUpgrade(wsUrl, ['foo']);
      assert.equal(answer.status, 400, answer.body);
    });

    serverTest('an upgrade offering no subprotocol is refused with 400', async () => {
      const answer = await refusedUpgrade(wsUrl, []);
      assert.equal(answer.status, 400, answer.body);
    });

    serverTest('a foreign Origin is refused with 403', async () => {
      const answer = await refusedUpgrade(wsUrl, [SUBPROTOCOL], {
        origin: 'http://evil.example.com',
      });
      assert.equal(answer.status, 403, answer.body);
    });

    serverTest('a localhost Origin is accepted', async () => {
      const socket = await open({ origin: `http://localhost:${server.port}` });
      assert.equal(socket.protocol, SUBPROTOCOL);
      await socket.close();
    });
  });

  describe('framing', () => {
    serverTest('malformed JSON gets -32700 with id null and the socket stays usable', async () => {
      const socket = await open();
      socket.send('{"jsonrpc": "2.0", "id": 1, "method": ');
      const until = Date.now() + REPLY_MS;
      while (socket.messages.length === 0 && Date.now() < until) await sleep(10);
      const first = socket.messages[0]?.message;
      assert.ok(first, 'no answer to malformed JSON');
      assert.equal(first.jsonrpc, '2.0', JSON.stringify(first));
      assert.equal(first.id, null, JSON.stringify(first));
      assert.equal(first.error?.code, -32700, JSON.stringify(first));
      await socket.initialize();
      const answer = await socket.request('ping');
      assert.deepEqual(answer.result, {}, JSON.stringify(answer));
      await socket.quickQuery(3);
      await socket.close();
    });

    serverTest('a binary frame closes the socket with 1003', async () => {
      const socket = await open();
      socket.send(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' })), {
        binary: true,
      });
      const { code } = await Promise.race([socket.closed, deadline(REPLY_MS, {})]);
      assert.equal(code, 1003, JSON.stringify(socket.messages));
    });

    serverTest('a 2 MiB text message closes the socket with 1009', async () => {
      const socket = await open();
      const message = JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'ping',
        params: { padding: 'x'.repeat(2 * 1024 * 1024) },
      });
      socket.send(message);
      const { code } = await Promise.race([socket.closed, deadline(REPLY_MS, {})]);
      assert.equal(code, 1009, JSON.stringify(socket.messages));
    });
  });

  describe('framing limits and details', () => {
    const LIMIT = 1024 * 1024; // http.max_body_bytes by default

    // A ping of exactly `bytes` bytes of JSON.
    function pingOfSize(bytes, id = 1) {
      const empty = JSON.stringify({ jsonrpc: '2.0', id, method: 'ping', params: { p: '' } });
      const message = JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'ping',
        params: { p: 'x'.repeat(bytes - empty.length) },
      });
      assert.equal(Buffer.byteLength(message), bytes);
      return message;
    }

    serverTest('a message of exactly 1 MiB is served', async () => {
      const socket = await open();
      socket.send(pingOfSize(LIMIT, 1));
      const answer = await socket.answer(1);
      assert.deepEqual(answer.result, {}, JSON.stringify(answer));
      await socket.close();
    });

    serverTest('a message of 1 MiB + 1 byte closes the socket with 1009', async () => {
      const socket = await open();
      socket.send(pingOfSize(LIMIT + 1, 1));
      const { code } = await Promise.race([socket.closed, deadline(REPLY_MS, {})]);
      assert.equal(code, 1009, JSON.stringify(socket.messages));
    });

    serverTest('an oversized message right behind another still gets its 1009', async () => {
      // The server must drain what the client is still sending before it closes the socket:
      // closing with unread data resets the connection, and the client can lose the close
      // frame (it then sees 1006). Sent right behind a small message, the oversized one is
      // still arriving when the server decides; ten rounds make a lost frame show.
      for (let round = 0; round < 10; round++) {
        const socket = await open();
        socket.send(pingOfSize(200, 1));
        socket.send(pingOfSize(LIMIT + 1, 2));
        const { code } = await Promise.race([socket.closed, deadline(REPLY_MS, {})]);
        const seen = JSON.stringify(socket.messages).slice(0, 300);
        assert.equal(code, 1009, `round ${round}: ${seen}`);
      }
    });

    serverTest('a fragmented message is reassembled', async () => {
      const socket = await open();
      const message = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' });
      socket.send(message.slice(0, 10), { fin: false });
      socket.send(message.slice(10, 20), { fin: false });
      socket.send(message.slice(20), { fin: true });
      const answer = await socket.answer(7);
      assert.deepEqual(answer.result, {}, JSON.stringify(answer));
      await socket.close();
    });

    serverTest('fragments that add up to more than 1 MiB close the socket with 1009', async () => {
      const socket = await open();
      const message = pingOfSize(LIMIT + 100, 1);
      const half = Math.floor(message.length / 2);
      socket.send(message.slice(0, half), { fin: false });
      socket.send(message.slice(half), { fin: true });
      const { code } = await Promise.race([socket.closed, deadline(REPLY_MS, {})]);
      assert.equal(code, 1009, JSON.stringify(socket.messages));
    });

    serverTest('a text frame that is not UTF-8 closes the socket with 1007', async () => {
      const socket = await open();
      socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
      const { code } = await Promise.race([socket.closed, deadline(REPLY_MS, {})]);
      assert.equal(code, 1007, JSON.stringify(socket.messages));
    });

    serverTest('a JSON array is -32600 and the socket stays open', async () => {
      const socket = await open();
      socket.send(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]));
      const until = Date.now() + REPLY_MS;
      while (socket.messages.length === 0 && Date.now() < until) await sleep(10);
      const first = socket.messages[0]?.message;
      assert.equal(first?.error?.code, -32600, JSON.stringify(first));
      assert.equal(first.id, null, JSON.stringify(first));
      const answer = await socket.request('ping');
      assert.deepEqual(answer.result, {}, JSON.stringify(answer));
      await socket.close();
    });

    serverTest('a WebSocket ping gets a pong with the same payload', async () => {
      const socket = await open();
      const pong = new Promise((resolve) =>
        socket.ws.once('pong', (data) => resolve(data.toString())),
      );
      socket.ws.ping('sluice-e2e');
      assert.equal(await Promise.race([pong, deadline(REPLY_MS, null)]), 'sluice-e2e');
      await socket.close();
    });

    serverTest('a close frame is answered with a close frame', async () => {
      const socket = await open();
      socket.ws.close(4000, 'bye');
      const { code } = await Promise.race([socket.closed, deadline(REPLY_MS, {})]);
      assert.equal(code, 4000);
    });
  });

  describe('session', () => {
    serverTest('a request before initialize without _meta is -32602', async () => {
      const socket = await open();
      const answer = await socket.request('tools/list');
      assert.equal(answer.error?.code, -32602, JSON.stringify(answer));
      await socket.close();
    });

    serverTest('a modern tools/list without initialize has resultType', async () => {
      const socket = await open();
      const answer = await socket.request('tools/list', { _meta: modernMeta() });
      assert.equal(answer.error, undefined, JSON.stringify(answer).slice(0, 2000));
      const result = answer.result;
      assert.equal(result.resultType, 'complete', JSON.stringify(result).slice(0, 2000));
      assert.deepEqual(
        result.tools.map((tool) => tool.name),
        TOOLS,
      );
      assert.ok(Number.isInteger(result.ttlMs) && result.ttlMs >= 0, `ttlMs: ${result.ttlMs}`);
      assert.ok(
        ['public', 'private'].includes(result.cacheScope),
        `cacheScope: ${result.cacheScope}`,
      );
      await socket.close();
    });

    serverTest('modern tools/call has resultType; legacy on the same socket has none', async () => {
      const socket = await open();
      const modern = await socket.request('tools/call', {
        name: 'query',
        arguments: { sql: 'SELECT 42 AS v' },
        _meta: modernMeta(),
      });
      assert.equal(modern.result?.resultType, 'complete', JSON.stringify(modern));
      assert.deepEqual(modern.result.structuredContent?.rows, [[42]]);
      await socket.initialize();
      const legacy = await socket.request('tools/call', {
        name: 'query',
        arguments: { sql: 'SELECT 43 AS v' },
      });
      assert.deepEqual(legacy.result?.structuredContent?.rows, [[43]], JSON.stringify(legacy));
      assert.equal(legacy.result.resultType, undefined, JSON.stringify(legacy));
      await socket.close();
    });
  });

  describe('concurrency and cancellation', () => {
    // How many rows the counting CTE needs to run about SLOW_TARGET_MS on this build.
    let slowRows = 0;

    async function calibrate(socket) {
      if (slowRows) return slowRows;
      let rows = 200_000;
      for (;;) {
        const started = performance.now();
        const id = socket.sendQuery(countingSql(rows), { timeout_ms: 60_000 });
        const answer = await socket.answer(id, 60_000);
        const elapsed = performance.now() - started;
        assert.deepEqual(answer.result?.structuredContent?.rows, [[rows]], JSON.stringify(answer));
        if (elapsed >= 200 || rows >= 100_000_000) {
          slowRows = Math.min(100_000_000, Math.ceil((rows * SLOW_TARGET_MS) / elapsed));
          return slowRows;
        }
        rows *= 10;
      }
    }

    serverTest('a fast request overtakes a slow one on the same socket', async (t) => {
      const socket = await open();
      await socket.initialize();
      const rows = await calibrate(socket);
      const slowStarted = performance.now();
      const slow = socket.sendQuery(countingSql(rows), { timeout_ms: 60_000 });
      const fast = socket.sendQuery('SELECT 1 AS v');
      const fastAnswer = await socket.answer(fast);
      const fastAt = performance.now();
      const slowAnswer = await socket.answer(slow, 60_000);
      const slowAt = performance.now();
      t.diagnostic(
        `slow query: ${rows} rows, ${Math.round(slowAt - slowStarted)} ms; ` +
          `fast query answered after ${Math.round(fastAt - slowStarted)} ms`,
      );
      assert.deepEqual(fastAnswer.result?.structuredContent?.rows, [[1]]);
      assert.deepEqual(slowAnswer.result?.structuredContent?.rows, [[rows]]);
      const order = socket.messages
        .map(({ message }) => message.id)
        .filter((id) => id === slow || id === fast);
      assert.deepEqual(order, [fast, slow], 'the fast answer did not arrive first');
      await socket.close();
    });

    serverTest(
      'a client that pipelines 2000 quick queries and reads every answer gets all of them',
      async (t) => {
        const socket = await open();
        await socket.initialize();
        const count = 2_000;
        const ids = [];
        for (let i = 0; i < count; i++) {
          ids.push(socket.sendQuery('SELECT 1 AS v'));
          // Yield now and then, so this process reads answers while it still sends.
          if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
        }
        const all = Promise.all(ids.map((id) => socket.answer(id, 60_000)));
        all.catch(() => {}); // rejects when the socket closes: the race below reports that
        const outcome = await Promise.race([
          all.then(() => ({ all: true })),
          socket.closed.then((closed) => ({ closed })),
        ]);
        const sent = new Set(ids);
        const answered = socket.messages.filter(({ message }) => sent.has(message.id));
        t.diagnostic(`${answered.length} of ${count} answered; ${JSON.stringify(outcome)}`);
        assert.equal(
          outcome.all,
          true,
          `the socket closed (${JSON.stringify(outcome.closed)}) after ` +
            `${answered.length} of ${count} answers`,
        );
        for (const { message } of answered) {
          assert.deepEqual(message.result?.structuredContent?.rows, [[1]], JSON.stringify(message));
        }
        await socket.close();
      },
    );

    serverTest('notifications/cancelled stops a running query', async () => {
      const socket = await open();
      await socket.initialize();
      const endless = socket.sendQuery(ENDLESS_SQL, { timeout_ms: 60_000 });
      await sleep(300);
      socket.notify('notifications/cancelled', { requestId: endless, reason: 'e2e test' });
      await socket.quickQuery(2);
      await socket.close();
    });

    serverTest('four cancelled queries free the whole pool', async () => {
      const socket = await open();
      await socket.initialize();
      const endless = [];
      for (let i = 0; i < POOL_SIZE; i++) {
        endless.push(socket.sendQuery(ENDLESS_SQL, { timeout_ms: 60_000 }));
      }
      await sleep(300);
      // The pool is busy now: a fifth query waits for a connection.
      const queuedStarted = performance.now();
      const queued = socket.sendQuery('SELECT 5 AS v');
      await sleep(1_000);
      assert.ok(
        !socket.messages.some(({ message }) => message.id === queued),
        'a fifth query answered while four endless queries ran: is the pool larger than four?',
      );
      for (const id of endless) {
        socket.notify('notifications/cancelled', { requestId: id, reason: 'e2e test' });
      }
      const answer = await socket.answer(queued, QUICK_MS + 5_000);
      const elapsed = performance.now() - queuedStarted - 1_000;
      assert.deepEqual(answer.result?.structuredContent?.rows, [[5]], JSON.stringify(answer));
      assert.ok(
        elapsed < QUICK_MS,
        `the queued query answered ${Math.round(elapsed)} ms after the cancels`,
      );
      // All four connections are back, not just one of them.
      await Promise.all([1, 2, 3, 4].map((n) => socket.quickQuery(n)));
      await socket.close();
    });

    serverTest('cancelled queries that still wait for a connection are dropped', async () => {
      const socket = await open();
      await socket.initialize();
      // Four run and hold the pool; four more wait for a connection.
      const endless = [];
      for (let i = 0; i < 2 * POOL_SIZE; i++) {
        endless.push(socket.sendQuery(ENDLESS_SQL, { timeout_ms: 60_000 }));
      }
      await sleep(300);
      // The waiting ones first: were they started instead of dropped, they would take over
      // the connections the running ones give back.
      for (const id of endless.toReversed()) {
        socket.notify('notifications/cancelled', { requestId: id, reason: 'e2e test' });
      }
      await Promise.all([1, 2, 3, 4].map((n) => socket.quickQuery(n)));
      await socket.close();
    });

    serverTest('closing the socket cancels its running queries', async () => {
      const socket = await open();
      await socket.initialize();
      for (let i = 0; i < POOL_SIZE; i++) socket.sendQuery(ENDLESS_SQL, { timeout_ms: 60_000 });
      await sleep(500);
      await socket.close();

      const next = await open();
      await next.initialize();
      await next.quickQuery(6);
      await Promise.all([1, 2, 3, 4].map((n) => next.quickQuery(n)));
      await next.close();
    });

    serverTest('closing the socket also drops its queries that wait for a connection', async () => {
      const socket = await open();
      await socket.initialize();
      for (let i = 0; i < 2 * POOL_SIZE; i++) {
        socket.sendQuery(ENDLESS_SQL, { timeout_ms: 60_000 });
      }
      await sleep(500);
      await socket.close();

      const next = await open();
      await next.initialize();
      await Promise.all([1, 2, 3, 4].map((n) => next.quickQuery(n)));
      await next.close();
    });

    serverTest('a socket dropped without a close frame cancels its queries too', async () => {
      const socket = await open();
      await socket.initialize();
      for (let i = 0; i < POOL_SIZE; i++) socket.sendQuery(ENDLESS_SQL, { timeout_ms: 60_000 });
      await sleep(500);
      socket.terminate(); // TCP close, no WebSocket close frame

      const next = await open();
      await next.initialize();
      await Promise.all([1, 2, 3, 4].map((n) => next.quickQuery(n)));
      await next.close();
    });
  });
});

// The session manager over a real transport: with one session allowed per client, a client's
// second WebSocket evicts its first, which is closed with 1008; other clients keep theirs.
describe('WebSocket sessions under the session manager', () => {
  const server = new SluiceServer();
  let wsUrl;
  let startup = null;
  let dir;

  before(async () => {
    try {
      dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-e2e-sessions-'));
      const config = path.join(dir, 'sluice.yaml');
      await writeFile(config, 'sessions: {max_per_client: 1}\n');
      await server.start(['--config', config]);
      wsUrl = `ws://127.0.0.1:${server.port}/mcp`;
    } catch (error) {
      startup = error;
    }
  });

  after(async () => {
    await server.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const initialize = (socket, name) =>
    socket.request('initialize', {
      protocolVersion: LEGACY_VERSION,
      capabilities: {},
      clientInfo: { name, version: '1.0.0' },
    });

  test('a client over its session cap loses its oldest session; others are untouched', TEST_TIMEOUT, async () => {
    if (startup) throw startup;
    const first = await RawSocket.open(wsUrl);
    const bystander = await RawSocket.open(wsUrl);
    assert.equal((await initialize(first, 'capped-agent')).error, undefined);
    assert.equal((await initialize(bystander, 'another-agent')).error, undefined);

    const second = await RawSocket.open(wsUrl);
    assert.equal((await initialize(second, 'capped-agent')).error, undefined);
    let timer;
    const gaveUp = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), REPLY_MS);
    });
    const closed = await Promise.race([first.closed, gaveUp]);
    clearTimeout(timer);
    assert.notEqual(closed, null, 'the evicted session was not closed');
    assert.equal(closed.code, 1008, JSON.stringify(closed));

    // The newer session and the other client's session still work.
    for (const socket of [second, bystander]) {
      const answer = await socket.request('tools/call', {
        name: 'query',
        arguments: { sql: 'SELECT 1 AS v' },
      });
      assert.deepEqual(answer.result?.structuredContent?.rows, [[1]], JSON.stringify(answer));
    }
    second.terminate();
    bystander.terminate();
  });
});
