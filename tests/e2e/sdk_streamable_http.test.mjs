// The official TypeScript SDK's client, over legacy Streamable HTTP, against a real sluice
// on the demo database: the lifecycle, the tool catalogue and each tool's result shape.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { SluiceServer, sluiceBinary } from './support/sluice_server.mjs';

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

function text(result) {
  return (result.content ?? [])
    .filter((block) => block.type === 'text')
    .map((block) => block.text)
    .join('\n');
}

// Asserts the shape every successful tool result shares and returns its structured
// content, with cell(row, columnName) to read a cell by the column's name.
function table(result) {
  const dump = JSON.stringify(result).slice(0, 2000);
  assert.notEqual(result.isError, true, `tool reported an error: ${dump}`);
  assert.ok(Array.isArray(result.content) && result.content.length > 0, `no content: ${dump}`);
  assert.equal(result.content[0].type, 'text', `first content block is not text: ${dump}`);
  assert.equal(typeof result.content[0].text, 'string');

  const sc = result.structuredContent;
  assert.ok(sc && typeof sc === 'object', `no structuredContent: ${dump}`);
  assert.ok(Array.isArray(sc.columns), `structuredContent.columns is not an array: ${dump}`);
  for (const column of sc.columns) {
    assert.equal(typeof column.name, 'string', `column without a name: ${dump}`);
    assert.equal(typeof column.type, 'string', `column without a type: ${dump}`);
  }
  assert.ok(Array.isArray(sc.rows), `structuredContent.rows is not an array: ${dump}`);
  for (const row of sc.rows) {
    assert.ok(Array.isArray(row), `a row is not an array: ${dump}`);
    assert.equal(row.length, sc.columns.length, `row width differs from columns: ${dump}`);
  }
  assert.equal(sc.rowCount, sc.rows.length, `rowCount differs from rows.length: ${dump}`);
  assert.equal(typeof sc.truncated, 'boolean', `truncated is not a boolean: ${dump}`);

  const index = (name) => {
    const i = sc.columns.findIndex((column) => column.name === name);
    assert.ok(i >= 0, `no column "${name}" in ${JSON.stringify(sc.columns)}`);
    return i;
  };
  return { ...sc, cell: (row, name) => row[index(name)] };
}

// Fails fast, with the reason, when SLUICE_BIN is not set.
sluiceBinary();

describe('@modelcontextprotocol/sdk over Streamable HTTP', () => {
  const server = new SluiceServer();
  let client;
  let transport;
  let startup = null; // why the server or the connection failed, reported by the first test

  const call = (name, args = {}) => client.callTool({ name, arguments: args });

  // Once the first test has reported a failed startup, the others skip instead of
  // repeating it.
  const serverTest = (name, fn) =>
    test(name, (t) => (startup ? t.skip('sluice did not start: see the first test') : fn(t)));

  before(async () => {
    try {
      await server.start();
    } catch (error) {
      startup = error;
      return;
    }
    client = new Client({ name: 'sluice-e2e', version: '1.0.0' });
    transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
    try {
      await client.connect(transport);
    } catch (error) {
      startup = new Error(`initialize failed: ${error.message}\n${server.stderrReport}`, {
        cause: error,
      });
    }
  });

  after(async () => {
    const crashed = !startup && !server.running;
    try {
      if (client) await client.close();
    } finally {
      await server.stop();
    }
    if (crashed) {
      throw new Error(
        `sluice ended during the tests (${server.exitDescription})\n${server.stderrReport}`,
      );
    }
  });

  test('initialize names the server, declares tools and opens a session', () => {
    if (startup) throw startup;
    assert.equal(client.getServerVersion()?.name, 'sluice');
    assert.ok(client.getServerCapabilities()?.tools, 'the tools capability is missing');
    assert.equal(typeof transport.sessionId, 'string', 'no Mcp-Session-Id was issued');
    assert.match(transport.sessionId, /^[\x21-\x7E]+$/);
  });

  serverTest('tools/list lists the seven database tools in order', async () => {
    // Listing also makes the SDK check every later structuredContent against its outputSchema.
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((tool) => tool.name),
      TOOLS,
    );
    for (const tool of tools) {
      assert.equal(typeof tool.description, 'string', `${tool.name}: no description`);
      assert.ok(tool.description.length > 0, `${tool.name}: empty description`);
      assert.equal(tool.inputSchema?.type, 'object', `${tool.name}: inputSchema`);
      assert.equal(tool.outputSchema?.type, 'object', `${tool.name}: outputSchema`);
      assert.equal(
        tool.annotations?.readOnlyHint,
        tool.name !== 'execute',
        `${tool.name}: annotations.readOnlyHint`,
      );
    }
  });

  serverTest('list_databases lists main', async () => {
    const result = table(await call('list_databases'));
    assert.ok(
      result.rows.some((row) => row[0] === 'main'),
      `no row starts with 'main': ${JSON.stringify(result.rows)}`,
    );
  });

  serverTest('list_schemas lists main', async () => {
    const result = table(await call('list_schemas'));
    assert.ok(
      result.rows.some((row) => row.includes('main')),
      `'main' is not listed: ${JSON.stringify(result.rows)}`,
    );
  });

  serverTest('list_tables lists the demo tables and views with their kind', async () => {
    const result = table(await call('list_tables'));
    const kinds = new Map(
      result.rows.map((row) => [result.cell(row, 'name'), result.cell(row, 'kind')]),
    );
    for (const name of ['customers', 'products', 'orders', 'order_items']) {
      assert.equal(kinds.get(name), 'table', `${name}: ${JSON.stringify(result.rows)}`);
    }
    for (const name of ['customer_revenue', 'monthly_sales']) {
      assert.equal(kinds.get(name), 'view', `${name}: ${JSON.stringify(result.rows)}`);
    }
  });

  serverTest('describe_table describes the columns of orders and its primary key', async () => {
    const result = table(await call('describe_table', { table: 'orders' }));
    assert.deepEqual(
      result.rows.map((row) => result.cell(row, 'name')),
      ['id', 'customer_id', 'ordered_at', 'status', 'total'],
    );
    const primaryKey = Object.fromEntries(
      result.rows.map((row) => [result.cell(row, 'name'), result.cell(row, 'primary_key')]),
    );
    assert.equal(primaryKey.id, true, `primary_key of id: ${JSON.stringify(result.rows)}`);
    assert.notEqual(primaryKey.customer_id, true, 'customer_id is not part of the primary key');
  });

  serverTest('query counts the customers', async () => {
    const result = table(await call('query', { sql: 'SELECT count(*) AS n FROM customers' }));
    assert.equal(result.columns[0].name, 'n');
    assert.equal(result.rows[0][0], 5000);
  });

  serverTest('query stops at max_rows and says the result is truncated', async () => {
    const result = table(
      await call('query', { sql: 'SELECT id, name FROM customers ORDER BY id', max_rows: 10 }),
    );
    assert.equal(result.rowCount, 10);
    assert.equal(result.truncated, true);
  });

  serverTest('query returns text as strings', async () => {
    const result = table(await call('query', { sql: 'SELECT name FROM customers WHERE id = 20' }));
    assert.equal(result.rowCount, 1);
    assert.equal(typeof result.rows[0][0], 'string');
  });

  serverTest('query refuses a write and points to execute', async () => {
    const result = await call('query', { sql: 'DELETE FROM customers' });
    assert.equal(result.isError, true, JSON.stringify(result));
    assert.match(text(result), /execute/);
  });

  serverTest('query reports a database error as a tool error with its SQLSTATE', async () => {
    const result = await call('query', { sql: 'SELECT * FROM no_such_table' });
    assert.equal(result.isError, true, JSON.stringify(result));
    assert.match(text(result), /SQLSTATE/);
    assert.match(text(result), /no_such_table/);
  });

  serverTest('query names the token that is not a read-only statement', async () => {
    const result = await call('query', { sql: 'SELEC 1' });
    assert.equal(result.isError, true, JSON.stringify(result));
    assert.match(text(result), /SELEC/);
  });

  serverTest('explain returns a plan', async () => {
    const result = table(
      await call('explain', { sql: 'SELECT * FROM orders WHERE customer_id = 7' }),
    );
    assert.ok(result.rowCount > 0, 'the plan is empty');
  });

  serverTest('execute is refused on the read-only demo source', async () => {
    const result = await call('execute', { sql: 'UPDATE customers SET name = name WHERE id = 1' });
    assert.equal(result.isError, true, JSON.stringify(result));
    assert.match(text(result), /allow_writes/);
  });

  serverTest('an unknown tool is a JSON-RPC error -32602', async () => {
    await assert.rejects(call('nope'), (error) => {
      assert.ok(error instanceof McpError, `not an McpError: ${error}`);
      assert.equal(error.code, -32602);
      return true;
    });
  });
});
