// Calls one tool once over legacy Streamable HTTP (initialize, then tools/call with the
// session id) and prints what came back in brief, so bench/run.sh can check that every server
// answers the same question with the same rows before timing it:
//
//   node bench/check_tool.mjs URL TOOL '{"sql": "..."}' 'REGEX' [SAVE]
//
// Prints one JSON line: {"matches": N, "bytes": B, "isError": false}, where N counts REGEX in
// the text content (what a model reads). Exits 1 if the call fails. With SAVE, also writes
// the call's JSON-RPC result to that file (bench/http_ceiling's canned answer).
import { writeFileSync } from 'node:fs';

const [url, tool, argsJson, pattern, save] = process.argv.slice(2);

const headers = {
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
};

// The JSON-RPC response in a plain JSON body or in an event stream.
async function post(message, extra = {}) {
  const response = await fetch(url, { method: 'POST', headers: { ...headers, ...extra }, body: JSON.stringify(message) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${message.method}: HTTP ${response.status}: ${text.slice(0, 300)}`);
  if (!('id' in message)) return { response, body: null };
  let body = null;
  if ((response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const m = JSON.parse(line.slice(5));
      if (m.id === message.id) body = m;
    }
  } else {
    body = JSON.parse(text);
  }
  if (!body || body.error) throw new Error(`${message.method}: ${JSON.stringify(body?.error ?? text).slice(0, 300)}`);
  return { response, body };
}

try {
  const init = await post({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench-check', version: '1' } },
  });
  const session = init.response.headers.get('mcp-session-id');
  const extra = { 'MCP-Protocol-Version': init.body.result.protocolVersion };
  if (session) extra['Mcp-Session-Id'] = session;
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, extra);
  const call = await post(
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: JSON.parse(argsJson) } },
    extra,
  );
  const result = call.body.result;
  const text = (result.content ?? []).map((c) => c.text ?? '').join('\n');
  const matches = text.match(new RegExp(pattern, 'g'))?.length ?? 0;
  if (save) writeFileSync(save, `${JSON.stringify(result)}\n`);
  console.log(JSON.stringify({ matches, bytes: JSON.stringify(call.body).length, isError: !!result.isError }));
  process.exit(result.isError ? 1 : 0);
} catch (error) {
  console.log(JSON.stringify({ error: error.message }));
  process.exit(1);
}
