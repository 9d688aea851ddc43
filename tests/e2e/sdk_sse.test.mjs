// The 2024-11-05 HTTP+SSE transport: the official SDK's SSEClientTransport, and the raw
// protocol (endpoint event first, 202 for POSTs, answers on the stream, unknown sessions).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';

import { SluiceServer, sluiceBinary } from './support/sluice_server.mjs';

sluiceBinary();

// Reads SSE events from a fetch response body until `until(event)` is true.
async function* events(response) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: 'message', data: '', comment: false };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) event.comment = true;
        else if (line.startsWith('event: ')) event.event = line.slice(7);
        else if (line.startsWith('data: ')) event.data += line.slice(6);
      }
      yield event;
    }
  }
}

describe('HTTP+SSE (2024-11-05)', () => {
  const server = new SluiceServer();
  let base;

  before(async () => {
    await server.start();
    base = new URL(server.url);
  });
  after(() => server.stop());

  test('the SDK SSEClientTransport initializes, lists tools and queries', async () => {
    const client = new Client({ name: 'sluice-e2e-sse', version: '1.0.0' });
    await client.connect(new SSEClientTransport(new URL('/sse', base)));
    assert.equal(client.getServerVersion().name, 'sluice');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.deepEqual(tools, [
      'list_databases', 'list_schemas', 'list_tables', 'describe_table', 'query', 'explain',
      'execute', 'set_context', 'get_context',
    ]);
    const result = await client.callTool({
      name: 'query',
      arguments: { sql: 'SELECT count(*) AS n FROM customers' },
    });
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.match(result.content[0].text, /^n\n5000\n/);
    await client.close();
  });

  test('raw: endpoint event first, 202 for each POST, answers as message events', async () => {
    const abort = new AbortController();
    const response = await fetch(new URL('/sse', base), {
      headers: { Accept: 'text/event-stream' },
      signal: abort.signal,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    const stream = events(response);
    const first = (await stream.next()).value;
    assert.equal(first.event, 'endpoint');
    assert.match(first.data, /^\/messages\?sessionId=[0-9a-f]{32}$/);
    const endpoint = new URL(first.data, base);

    const post = async (message) => {
      const r = await fetch(endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(message),
      });
      assert.equal(r.status, 202, await r.text());
    };
    await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    let next;
    do next = (await stream.next()).value; while (next.comment);
    assert.equal(next.event, 'message');
    const init = JSON.parse(next.data);
    assert.equal(init.id, 1);
    assert.equal(init.result.protocolVersion, '2024-11-05', 'the 2024-11-05 revision is echoed');

    await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await post({ jsonrpc: '2.0', id: 2, method: 'ping' });
    do next = (await stream.next()).value; while (next.comment);
    assert.deepEqual(JSON.parse(next.data), { jsonrpc: '2.0', id: 2, result: {} });

    await post({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'query', arguments: { sql: 'SELECT 40 + 2 AS answer' } },
    });
    do next = (await stream.next()).value; while (next.comment);
    const call = JSON.parse(next.data);
    assert.equal(call.id, 3);
    assert.match(call.result.content[0].text, /^answer\n42\n/);
    assert.equal(call.result.structuredContent, undefined, 'structuredContent came with 2025-06-18');
    abort.abort();
    // The stream is the session: once closed, its endpoint is gone.
    let status = 202;
    for (let i = 0; i < 50 && status !== 404; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const r = await fetch(endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping' }),
      });
      status = r.status;
    }
    assert.equal(status, 404);
  });

  test('raw: an unknown session is 404', async () => {
    const r = await fetch(new URL('/messages?sessionId=00000000000000000000000000000000', base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    assert.equal(r.status, 404);
  });
});
