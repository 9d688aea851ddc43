// The modern protocol revision (2026-07-28) over raw HTTP against a real sluice on the demo
// database. The SDK does not speak this revision, so every request is built by hand: the
// per-request _meta, the MCP-Protocol-Version, Mcp-Method and Mcp-Name headers, and the
// checks of the HTTP pipeline (/work/shared/MCP-PROTOCOL.md §2): discovery, caching hints,
// header validation, version errors, removed methods, transport errors, progress over SSE,
// and cancellation by closing the response stream.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { SluiceServer, sluiceBinary } from './support/sluice_server.mjs';

const VERSION = '2026-07-28';
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
const CLIENT_INFO = { name: 'sluice-e2e-modern', version: '1.0.0' };
const ACCEPT = 'application/json, text/event-stream';
// Runs in SQLite until it is interrupted: a recursive CTE without an end.
const ENDLESS_SQL =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c';
const QUICK_MS = 5_000; // "promptly": a simple query after cancellations

// The _meta every modern request carries; `extra` adds or replaces keys (undefined drops one).
function meta(extra = {}) {
  const m = {
    'io.modelcontextprotocol/protocolVersion': VERSION,
    'io.modelcontextprotocol/clientCapabilities': {},
    'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
    ...extra,
  };
  for (const key of Object.keys(m)) if (m[key] === undefined) delete m[key];
  return m;
}

let lastId = 0;

// A modern JSON-RPC request: params plus _meta (metaExtra adjusts it).
function request(method, params = {}, metaExtra = {}) {
  return { jsonrpc: '2.0', id: ++lastId, method, params: { ...params, _meta: meta(metaExtra) } };
}

function toolCall(name, args = {}, metaExtra = {}) {
  return request('tools/call', { name, arguments: args }, metaExtra);
}

// The headers a modern client sends for `message`; `overrides` replaces some, and an
// undefined value leaves that header out.
function headersFor(message, overrides = {}) {
  const headers = {
    'Content-Type': 'application/json',
    Accept: ACCEPT,
    'MCP-Protocol-Version': message.params?._meta?.['io.modelcontextprotocol/protocolVersion'],
    'Mcp-Method': message.method,
  };
  if (message.method === 'tools/call') headers['Mcp-Name'] = message.params.name;
  Object.assign(headers, overrides);
  for (const key of Object.keys(headers)) if (headers[key] === undefined) delete headers[key];
  return headers;
}

// Splits a text/event-stream body into events: {event, data, id, fields}.
function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (!block.trim()) continue;
    const event = { event: null, data: [], id: null, fields: [] };
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue; // comment / keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      event.fields.push(field);
      if (field === 'event') event.event = value;
      else if (field === 'data') event.data.push(value);
      else if (field === 'id') event.id = value;
    }
    if (event.fields.length === 0) continue;
    event.data = event.data.join('\n');
    events.push(event);
  }
  return events;
}

sluiceBinary();

describe('modern revision 2026-07-28 over raw HTTP', () => {
  const server = new SluiceServer();
  let startup = null;
  let mcpUrl;

  const serverTest = (name, options, fn) => {
    if (typeof options === 'function') [fn, options] = [options, {}];
    return test(name, options, (t) =>
      startup ? t.skip('sluice did not start: see the first test') : fn(t),
    );
  };

  // POSTs `message` (an object, or a string sent as is) and reads the whole answer:
  // {status, headers, contentType, text, json}. json is the parsed body when it is JSON.
  async function post(message, { headers, signal } = {}) {
    const body = typeof message === 'string' ? message : JSON.stringify(message);
    const response = await fetch(mcpUrl, {
      method: 'POST',
      headers: headers ?? headersFor(message),
      body,
      signal,
    });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: the caller looks at text
    }
    return {
      status: response.status,
      headers: response.headers,
      contentType: response.headers.get('content-type') ?? '',
      text,
      json,
    };
  }

  // The same over node:http on a fresh connection, for headers fetch will not send as
  // given (Host) and for a second, separate connection.
  function rawPost(message, headers) {
    const body = typeof message === 'string' ? message : JSON.stringify(message);
    return new Promise((resolve, reject) => {
      const req = http.request(
        mcpUrl,
        {
          method: 'POST',
          agent: false,
          headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => {
            let json = null;
            try {
              json = text ? JSON.parse(text) : null;
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode, headers: res.headers, text, json });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  // Asserts a successful JSON response to `message` and returns its result.
  async function call(message, options) {
    const answer = await post(message, options);
    const dump = `${answer.status} ${answer.contentType}: ${answer.text.slice(0, 2000)}`;
    assert.equal(answer.status, 200, dump);
    assert.match(answer.contentType, /^application\/json/, dump);
    assert.equal(answer.headers.get('mcp-session-id'), null, `a modern answer minted a session`);
    assert.equal(answer.json?.jsonrpc, '2.0', dump);
    assert.equal(answer.json.id, message.id, dump);
    assert.equal(answer.json.error, undefined, dump);
    assert.ok(answer.json.result && typeof answer.json.result === 'object', dump);
    return answer.json.result;
  }

  // Asserts a JSON-RPC error answer with the given HTTP status and code; returns the error.
  async function expectError(message, options, status, code) {
    const answer = await post(message, options);
    const dump = `${answer.status} ${answer.contentType}: ${answer.text.slice(0, 2000)}`;
    assert.equal(answer.status, status, dump);
    assert.match(answer.contentType, /^application\/json/, dump);
    assert.equal(answer.json?.jsonrpc, '2.0', dump);
    assert.equal(answer.json.result, undefined, dump);
    assert.equal(answer.json.error?.code, code, dump);
    assert.equal(typeof answer.json.error.message, 'string', dump);
    if (typeof message === 'object' && message.id !== undefined) {
      assert.equal(answer.json.id, message.id, `the error does not echo the request id: ${dump}`);
    }
    return answer.json.error;
  }

  // Checks the result shape every modern result shares.
  function assertModernResult(result) {
    const dump = JSON.stringify(result).slice(0, 2000);
    assert.equal(result.resultType, 'complete', `resultType: ${dump}`);
    assert.equal(result._meta?.['io.modelcontextprotocol/serverInfo']?.name, 'sluice', dump);
  }

  before(async () => {
    try {
      await server.start();
      mcpUrl = `${server.url}/mcp`;
    } catch (error) {
      startup = error;
    }
  });

  after(async () => {
    const crashed = !startup && !server.running;
    await server.stop();
    if (crashed) {
      throw new Error(
        `sluice ended during the tests (${server.exitDescription})\n${server.stderrReport}`,
      );
    }
  });

  test('server/discover lists 2026-07-28, tools, caching hints and serverInfo', async () => {
    if (startup) throw startup;
    const message = request('server/discover');
    const answer = await post(message);
    assert.equal(answer.headers.get('mcp-session-id'), null, 'server/discover minted a session');
    const result = await call(message);
    const dump = JSON.stringify(result);
    assert.ok(Array.isArray(result.supportedVersions), dump);
    assert.ok(result.supportedVersions.includes(VERSION), dump);
    assert.ok(result.capabilities?.tools, `no tools capability: ${dump}`);
    assert.ok(Number.isInteger(result.ttlMs) && result.ttlMs >= 0, `ttlMs: ${dump}`);
    assert.ok(['public', 'private'].includes(result.cacheScope), `cacheScope: ${dump}`);
    assertModernResult(result);
  });

  serverTest('server/discover is served without clientInfo', async () => {
    const result = await call(
      request('server/discover', {}, { 'io.modelcontextprotocol/clientInfo': undefined }),
    );
    assertModernResult(result);
  });

  serverTest('tools/list: seven tools, caching hints, same order on two connections', async () => {
    const first = await call(request('tools/list'));
    assertModernResult(first);
    assert.deepEqual(
      first.tools.map((tool) => tool.name),
      TOOLS,
    );
    assert.ok(Number.isInteger(first.ttlMs) && first.ttlMs >= 0, `ttlMs: ${first.ttlMs}`);
    assert.ok(['public', 'private'].includes(first.cacheScope), `cacheScope: ${first.cacheScope}`);
    assert.equal(first.nextCursor, undefined, 'the seven tools fit on one page');
    for (const tool of first.tools) {
      assert.equal(tool.inputSchema?.type, 'object', `${tool.name}: inputSchema`);
    }

    const message = request('tools/list');
    const second = await rawPost(message, headersFor(message));
    assert.equal(second.status, 200, second.text.slice(0, 2000));
    assert.equal(second.json?.id, message.id);
    assert.deepEqual(
      second.json.result.tools.map((tool) => tool.name),
      first.tools.map((tool) => tool.name),
    );
    assert.equal(second.json.result.cacheScope, first.cacheScope);
  });

  serverTest('tools/call query answers with structuredContent and resultType', async () => {
    const result = await call(toolCall('query', { sql: 'SELECT count(*) AS n FROM orders' }));
    assertModernResult(result);
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.equal(result.content?.[0]?.type, 'text');
    const sc = result.structuredContent;
    assert.deepEqual(
      sc.columns.map((column) => column.name),
      ['n'],
    );
    assert.deepEqual(sc.rows, [[15000]]);
    assert.equal(sc.rowCount, 1);
    assert.equal(sc.truncated, false);
  });

  serverTest('a tool error is an isError result with resultType', async () => {
    const result = await call(toolCall('query', { sql: 'SELECT * FROM no_such_table' }));
    assertModernResult(result);
    assert.equal(result.isError, true, JSON.stringify(result));
  });

  serverTest('an unknown tool is -32602', async () => {
    const message = toolCall('nope');
    const answer = await post(message);
    assert.equal(answer.json?.error?.code, -32602, answer.text);
    assert.equal(answer.json.id, message.id);
  });

  describe('header validation: 400 / -32020 HeaderMismatch', () => {
    serverTest('MCP-Protocol-Version missing', async () => {
      const message = request('tools/list');
      await expectError(
        message,
        { headers: headersFor(message, { 'MCP-Protocol-Version': undefined }) },
        400,
        -32020,
      );
    });

    serverTest('MCP-Protocol-Version differs from _meta', async () => {
      const message = request('tools/list');
      await expectError(
        message,
        { headers: headersFor(message, { 'MCP-Protocol-Version': '2025-11-25' }) },
        400,
        -32020,
      );
    });

    serverTest('Mcp-Method missing', async () => {
      const message = request('tools/list');
      await expectError(
        message,
        { headers: headersFor(message, { 'Mcp-Method': undefined }) },
        400,
        -32020,
      );
    });

    serverTest('Mcp-Method differs from the method', async () => {
      const message = request('tools/list');
      await expectError(
        message,
        { headers: headersFor(message, { 'Mcp-Method': 'tools/call' }) },
        400,
        -32020,
      );
    });

    serverTest('Mcp-Method differs in case (values are case-sensitive)', async () => {
      const message = request('tools/list');
      await expectError(
        message,
        { headers: headersFor(message, { 'Mcp-Method': 'TOOLS/LIST' }) },
        400,
        -32020,
      );
    });

    serverTest('Mcp-Name missing on tools/call', async () => {
      const message = toolCall('query', { sql: 'SELECT 1' });
      await expectError(
        message,
        { headers: headersFor(message, { 'Mcp-Name': undefined }) },
        400,
        -32020,
      );
    });

    serverTest('Mcp-Name differs from params.name', async () => {
      const message = toolCall('query', { sql: 'SELECT 1' });
      await expectError(
        message,
        { headers: headersFor(message, { 'Mcp-Name': 'explain' }) },
        400,
        -32020,
      );
    });

    serverTest('Mcp-Name as a base64 sentinel of "query" is accepted', async () => {
      const message = toolCall('query', { sql: 'SELECT 1 AS one' });
      const result = await call(message, {
        headers: headersFor(message, { 'Mcp-Name': '=?base64?cXVlcnk=?=' }),
      });
      assertModernResult(result);
      assert.deepEqual(result.structuredContent?.rows, [[1]], JSON.stringify(result));
    });

    serverTest('Mcp-Name with surrounding whitespace is accepted', async () => {
      const message = toolCall('query', { sql: 'SELECT 1 AS one' });
      const answer = await rawPost(message, headersFor(message, { 'Mcp-Name': '  query  ' }));
      assert.equal(answer.status, 200, answer.text.slice(0, 2000));
      assert.deepEqual(answer.json?.result?.structuredContent?.rows, [[1]], answer.text);
    });

    serverTest('a base64 sentinel with bad padding is rejected', async () => {
      const message = toolCall('query', { sql: 'SELECT 1' });
      await expectError(
        message,
        { headers: headersFor(message, { 'Mcp-Name': '=?base64?cXVlcnk?=' }) },
        400,
        -32020,
      );
    });
  });

  serverTest('an unsupported version in header and _meta is 400 / -32022', async () => {
    const discover = await call(request('server/discover'));
    const message = request('tools/list', {}, { 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' });
    const error = await expectError(message, undefined, 400, -32022);
    const dump = JSON.stringify(error);
    assert.equal(error.data?.requested, 'v999.0.0', dump);
    assert.ok(Array.isArray(error.data?.supported) && error.data.supported.length > 0, dump);
    assert.ok(error.data.supported.includes(VERSION), dump);
    for (const version of error.data.supported) {
      assert.ok(
        discover.supportedVersions.includes(version),
        `${version} is not in the discover list ${JSON.stringify(discover.supportedVersions)}`,
      );
    }
  });

  serverTest('missing clientCapabilities is 400 / -32602', async () => {
    const message = request(
      'tools/list',
      {},
      { 'io.modelcontextprotocol/clientCapabilities': undefined },
    );
    await expectError(message, undefined, 400, -32602);
  });

  serverTest('server/discover with params {} is 400 / -32602', async () => {
    const message = { jsonrpc: '2.0', id: ++lastId, method: 'server/discover', params: {} };
    await expectError(
      message,
      { headers: headersFor(message, { 'MCP-Protocol-Version': VERSION }) },
      400,
      -32602,
    );
  });

  serverTest('ping with modern _meta is 404 / -32601 (removed in 2026-07-28)', async () => {
    await expectError(request('ping'), undefined, 404, -32601);
  });

  serverTest('initialize with modern _meta is 404 / -32601', async () => {
    const message = request('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: CLIENT_INFO,
    });
    await expectError(message, undefined, 404, -32601);
  });

  serverTest('a notification POST is 202 with an empty body', async () => {
    const message = {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 987654, reason: 'test', _meta: meta() },
    };
    const answer = await post(message);
    assert.equal(answer.status, 202, answer.text);
    assert.equal(answer.text, '');
    assert.equal(answer.headers.get('mcp-session-id'), null);
  });

  serverTest('bad JSON is 400 / -32700 with id null', async () => {
    const message = request('tools/list');
    const answer = await post('{not json', { headers: headersFor(message) });
    assert.equal(answer.status, 400, answer.text);
    assert.equal(answer.json?.error?.code, -32700, answer.text);
    assert.equal(answer.json.id, null);
  });

  describe('transport errors', () => {
    serverTest('a Content-Type other than application/json is 415', async () => {
      const message = request('tools/list');
      const answer = await post(message, {
        headers: headersFor(message, { 'Content-Type': 'text/plain' }),
      });
      assert.equal(answer.status, 415, answer.text);
    });

    serverTest('an Accept without text/event-stream is 406', async () => {
      const message = request('tools/list');
      const answer = await post(message, {
        headers: headersFor(message, { Accept: 'application/json' }),
      });
      assert.equal(answer.status, 406, answer.text);
    });

    serverTest('a foreign Origin is 403', async () => {
      const message = request('tools/list');
      const answer = await post(message, {
        headers: headersFor(message, { Origin: 'http://evil.example.com' }),
      });
      assert.equal(answer.status, 403, answer.text);
    });

    serverTest('a localhost Origin is served', async () => {
      const message = request('tools/list');
      await call(message, {
        headers: headersFor(message, { Origin: `http://localhost:${server.port}` }),
      });
    });

    serverTest('a foreign Host is 403', async () => {
      const message = request('tools/list');
      const answer = await rawPost(message, headersFor(message, { Host: 'evil.example.com' }));
      assert.equal(answer.status, 403, answer.text);
    });

    serverTest('GET /mcp is 405', async () => {
      const response = await fetch(mcpUrl, { headers: { Accept: 'text/event-stream' } });
      await response.arrayBuffer();
      assert.equal(response.status, 405);
    });

    serverTest('a chunked body over 1 MiB is 413', async () => {
      const message = request('tools/list');
      const chunk = new TextEncoder().encode(' '.repeat(64 * 1024));
      let sent = 0;
      const body = new ReadableStream({
        pull(controller) {
          if (sent++ < 17) controller.enqueue(chunk); // 17 * 64 KiB > 1 MiB
          else controller.close();
        },
      });
      const response = await fetch(mcpUrl, {
        method: 'POST',
        headers: headersFor(message),
        body,
        duplex: 'half',
      });
      const text = await response.text();
      assert.equal(response.status, 413, text);
    });

    serverTest(
      'a body over 1 MiB with Content-Length is 413',
      async () => {
        const message = request('tools/list', { padding: 'x'.repeat(1024 * 1024 + 1024) });
        let answer;
        try {
          answer = await post(message);
        } catch (error) {
          assert.fail(
            `POST of ${JSON.stringify(message).length} bytes with Content-Length got no ` +
              `response: ${error.message} (${error.cause?.code ?? ''} ${error.cause?.message ?? ''})`,
          );
        }
        assert.equal(answer.status, 413, answer.text);
      },
    );

    // Statements this large are rare but real (generated INSERTs, pasted scripts); the server
    // must read them whole, with Content-Length or in chunks, and answer them.
    const nearLimit = () => toolCall('query', { sql: `SELECT 1 AS one -- ${'x'.repeat(1000 * 1024)}` });

    serverTest('a body just under 1 MiB with Content-Length is answered', async () => {
      const message = nearLimit();
      const answer = await rawPost(message, headersFor(message));
      assert.equal(answer.status, 200, answer.text.slice(0, 2000));
      assert.deepEqual(answer.json?.result?.structuredContent?.rows, [[1]], answer.text.slice(0, 2000));
    });

    serverTest('a chunked body just under 1 MiB is answered', async () => {
      const message = nearLimit();
      const bytes = new TextEncoder().encode(JSON.stringify(message));
      let at = 0;
      const body = new ReadableStream({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          controller.enqueue(bytes.subarray(at, at + 48 * 1024));
          at += 48 * 1024;
        },
      });
      const response = await fetch(mcpUrl, { method: 'POST', headers: headersFor(message), body, duplex: 'half' });
      const text = await response.text();
      assert.equal(response.status, 200, text.slice(0, 2000));
      assert.deepEqual(JSON.parse(text).result?.structuredContent?.rows, [[1]], text.slice(0, 2000));
    });
  });

  serverTest('progress: an SSE stream with notifications/progress before the result', async () => {
    const token = `progress-${Date.now()}`;
    const message = toolCall(
      'query',
      { sql: 'SELECT * FROM order_items' },
      { progressToken: token },
    );
    const response = await fetch(mcpUrl, {
      method: 'POST',
      headers: headersFor(message),
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(response.headers.get('mcp-session-id'), null);
    const text = await response.text(); // resolves only once the server ends the stream
    const events = parseSse(text);
    const dump = text.slice(0, 3000);
    assert.ok(events.length >= 2, `expected progress and a result: ${dump}`);

    const messages = events.map((event) => {
      assert.equal(event.event, 'message', `an event is not "message": ${dump}`);
      assert.equal(event.id, null, `modern SSE events carry no id: ${dump}`);
      return JSON.parse(event.data);
    });
    const last = messages.at(-1);
    assert.equal(last.id, message.id, `the last event is not the response: ${dump}`);
    assertModernResult(last.result);
    assert.equal(last.result.structuredContent?.rowCount, 1000);
    assert.equal(last.result.structuredContent?.truncated, true);

    const before = messages.slice(0, -1);
    assert.ok(before.length >= 1, `no progress before the result: ${dump}`);
    let previous = -Infinity;
    for (const m of before) {
      assert.equal(m.id, undefined, `a second response or a request on the stream: ${dump}`);
      assert.equal(m.method, 'notifications/progress', `unexpected notification: ${dump}`);
      assert.equal(m.params.progressToken, token);
      assert.ok(m.params.progress > previous, `progress does not increase: ${dump}`);
      previous = m.params.progress;
    }
  });

  serverTest('without a progressToken the answer is plain JSON', async () => {
    const message = toolCall('query', { sql: 'SELECT * FROM order_items' });
    const answer = await post(message);
    assert.equal(answer.status, 200);
    assert.match(answer.contentType, /^application\/json/);
    assert.equal(answer.json?.result?.structuredContent?.rowCount, 1000);
  });

  describe('cancellation by closing the response stream', () => {
    // Starts an endless query and aborts its fetch after `ms`.
    async function startAndAbort(ms) {
      const message = toolCall('query', { sql: ENDLESS_SQL, timeout_ms: 60_000 });
      const controller = new AbortController();
      const pending = fetch(mcpUrl, {
        method: 'POST',
        headers: headersFor(message),
        body: JSON.stringify(message),
        signal: controller.signal,
      }).then(
        async (response) => ({ status: response.status, text: await response.text() }),
        (error) => ({ error }),
      );
      await new Promise((resolve) => setTimeout(resolve, ms));
      controller.abort();
      const outcome = await pending;
      // Had the query ended by itself within `ms`, it would not test cancellation.
      assert.equal(
        outcome.error?.name,
        'AbortError',
        `the endless query answered before it was aborted: ${JSON.stringify(outcome).slice(0, 500)}`,
      );
    }

    async function quickQuery() {
      const started = performance.now();
      const result = await call(toolCall('query', { sql: 'SELECT 1 AS one' }), {
        signal: AbortSignal.timeout(QUICK_MS + 5_000),
      });
      const elapsed = performance.now() - started;
      assert.deepEqual(result.structuredContent?.rows, [[1]], JSON.stringify(result));
      assert.ok(elapsed < QUICK_MS, `SELECT 1 took ${Math.round(elapsed)} ms`);
    }

    serverTest('a query after an aborted endless query answers promptly', async () => {
      await startAndAbort(300);
      await quickQuery();
    });

    serverTest('four aborted endless queries free the whole pool of four', async () => {
      await Promise.all([1, 2, 3, 4].map(() => startAndAbort(300)));
      await quickQuery();
      // And again: the connections are really back, not just one of them.
      await Promise.all([1, 2, 3, 4].map(() => startAndAbort(300)));
      await Promise.all([1, 2, 3, 4].map(() => quickQuery()));
    });
  });
});
