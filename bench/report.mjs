// Turns the runs bench/run.sh recorded into one table: medians over repeats per system,
// statement and concurrency, the WebSocket line, and the targets of issue 6 as ratios
// measured in the same run. Writes RESULTS/latest.md and RESULTS/latest.json and prints the
// Markdown. Run by bench/run.sh; not meant to be called by hand.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    options[argv[i].slice(2)] = argv[i + 1];
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const clkTck = Number(options['clk-tck']);
const SYSTEMS = ['sluice-base', 'sluice', 'sluice-odbc', 'toolbox', 'dbhub', 'ceiling', 'odbc', 'pgbench'];
const LABELS = {
  'sluice-base': 'Sluice baseline (native PostgreSQL)',
  sluice: 'Sluice (native PostgreSQL)',
  'sluice-odbc': 'Sluice (psqlODBC)',
  toolbox: 'MCP Toolbox',
  dbhub: 'DBHub',
  ceiling: 'ceiling: canned HTTP',
  odbc: 'floor: ODBC',
  pgbench: 'floor: pgbench',
};
const SCENARIOS = {
  select1: 'SELECT 1',
  rows100: '100 rows',
};

// MB as the issue's targets count them: 10^6 bytes.
const mb = (kib) => (kib * 1024) / 1e6;

const median = (xs) => {
  const v = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

// pgbench: per-transaction logs (client, transaction, latency µs, script, epoch s, µs), of
// which only the transactions that ended inside the measured window count. pgbench reads the
// clock once per batch of ready clients, so many logged latencies are 0: its percentiles
// mean nothing below a millisecond. The mean is what pgbench itself reports: clients divided
// by throughput (a closed loop).
function pgbenchRun(run) {
  const ends = [];
  const latencies = [];
  for (const file of readdirSync(run.dir).filter((f) => f.startsWith('log'))) {
    for (const line of readFileSync(path.join(run.dir, file), 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f.length < 6) continue;
      ends.push(Number(f[4]) * 1e6 + Number(f[5]));
      latencies.push(Number(f[2]));
    }
  }
  const out = readFileSync(path.join(run.dir, 'out.txt'), 'utf8');
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  const aborted = /aborted/.test(out) ? 1 : 0;
  if (!ends.length) return { ok: 0, errors: failed + aborted, rps: 0, mean: null, note: out.trim() };
  let start = Infinity;
  for (let i = 0; i < ends.length; i++) start = Math.min(start, ends[i] - latencies[i]);
  const from = start + run.warmup_s * 1e6;
  const to = from + run.duration_s * 1e6;
  let ok = 0;
  for (const end of ends) if (end >= from && end <= to) ok++;
  const rps = ok / run.duration_s;
  return { ok, errors: failed + aborted, rps, mean: rps ? (run.clients * 1000) / rps : null };
}

function measure(run) {
  const perRequest = (ticks, ok) => (ticks === undefined || !ok ? null : ((ticks / clkTck) * 1e6) / ok);
  if (run.kind === 'sluice-load') {
    const r = JSON.parse(readFileSync(run.file, 'utf8'));
    const s = r.summary;
    return {
      ok: s.ok,
      errors: s.errors,
      error_kinds: r.errors.map((e) => `${e.kind} x${e.count}: ${String(e.sample).slice(0, 100)}`),
      rps: s.rps,
      p50: s.latency_ms?.p50 ?? null,
      p95: s.latency_ms?.p95 ?? null,
      p99: s.latency_ms?.p99 ?? null,
      server_cpu_us: perRequest(run.server_ticks, s.ok),
      db_cpu_us: perRequest(run.db_ticks, s.ok),
      peak_rss_mb: mb(run.peak_rss_kib),
      generator_cpu_s: r.generator?.cpu_s ?? null,
    };
  }
  if (run.kind === 'odbc_floor') {
    const r = JSON.parse(readFileSync(run.file, 'utf8'));
    return {
      ok: r.ok,
      errors: r.errors,
      error_kinds: r.first_error ? [r.first_error] : [],
      rps: r.rps,
      p50: r.latency_ms.p50,
      p95: r.latency_ms.p95,
      p99: r.latency_ms.p99,
      // the client's own CPU: driver and fetch, the least any ODBC gateway spends
      server_cpu_us: r.cpu_us_per_request,
      db_cpu_us: perRequest(run.db_ticks, r.ok),
      peak_rss_mb: null,
      rows_per_request: r.rows_per_request,
    };
  }
  const r = pgbenchRun(run);
  return {
    ok: r.ok,
    errors: r.errors,
    error_kinds: r.note ? [r.note.slice(0, 300)] : [],
    rps: r.rps,
    p50: null,
    p95: null,
    p99: null,
    mean: r.mean,
    server_cpu_us: null,
    db_cpu_us: perRequest(run.db_ticks, r.ok),
    peak_rss_mb: null,
  };
}

const runs = readFileSync(options.runs, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line))
  .map((run) => ({ system: run.system, scenario: run.scenario, clients: run.clients, repeat: run.repeat, ...measure(run) }));

const rows = [];
const levels = [...new Set(runs.map((r) => r.clients))].sort((a, b) => a - b);
for (const scenario of Object.keys(SCENARIOS)) {
  for (const clients of levels) {
    for (const system of SYSTEMS) {
      const group = runs.filter((r) => r.system === system && r.scenario === scenario && r.clients === clients);
      if (!group.length) continue;
      const rss = group.map((r) => r.peak_rss_mb).filter((x) => x !== null);
      rows.push({
        scenario,
        clients,
        system,
        repeats: group.length,
        rps: median(group.map((r) => r.rps)),
        p50: median(group.map((r) => r.p50)),
        p95: median(group.map((r) => r.p95)),
        p99: median(group.map((r) => r.p99)),
        mean: median(group.map((r) => r.mean ?? null)),
        errors: group.reduce((n, r) => n + r.errors, 0),
        server_cpu_us: median(group.map((r) => r.server_cpu_us)),
        db_cpu_us: median(group.map((r) => r.db_cpu_us)),
        peak_rss_mb: rss.length ? Math.max(...rss) : null,
      });
    }
  }
}

const checks = [];
if (options.checks) {
  for (const line of readFileSync(options.checks, 'utf8').split('\n').filter(Boolean)) {
    try {
      checks.push(JSON.parse(line));
    } catch {
      checks.push({ system: '?', scenario: '?', check: { error: line.slice(0, 200) } });
    }
  }
}

let ws = null;
if (options.ws) {
  try {
    ws = JSON.parse(readFileSync(options.ws, 'utf8').trim().split('\n').pop());
  } catch {
    ws = null;
  }
}

// The targets, as ratios within this run, at the highest concurrency measured.
const top = levels.length ? levels[levels.length - 1] : null;
const row = (system, scenario) => rows.find((r) => r.system === system && r.scenario === scenario && r.clients === top);
const targets = [];
const ratio = (name, a, b, field, goal, higherIsBetter) => {
  const x = a?.[field];
  const y = b?.[field];
  const value = x !== null && x !== undefined && y ? x / y : null;
  targets.push({
    target: name,
    measured: value === null ? 'n/a' : `${value.toFixed(2)}x`,
    met: value === null ? null : higherIsBetter ? value >= goal : value <= goal,
  });
};
ratio(`SELECT 1 at c${top}: req/s ≥ 2x Toolbox`, row('sluice', 'select1'), row('toolbox', 'select1'), 'rps', 2, true);
ratio(`SELECT 1 at c${top}: req/s ≥ 0.75x pgbench`, row('sluice', 'select1'), row('pgbench', 'select1'), 'rps', 0.75, true);
ratio(`100 rows at c${top}: req/s ≥ 3x Toolbox`, row('sluice', 'rows100'), row('toolbox', 'rows100'), 'rps', 3, true);
for (const s of Object.keys(SCENARIOS)) {
  ratio(`${SCENARIOS[s]} at c${top}: server CPU per request ≤ 0.25x Toolbox`, row('sluice', s), row('toolbox', s), 'server_cpu_us', 0.25, false);
}
for (const s of Object.keys(SCENARIOS)) {
  ratio(`${SCENARIOS[s]} at c${top}: p99 ≤ 0.5x Toolbox`, row('sluice', s), row('toolbox', s), 'p99', 0.5, false);
}
{
  const peaks = Object.keys(SCENARIOS).map((s) => row('sluice', s)?.peak_rss_mb).filter((x) => x != null);
  const peak = peaks.length ? Math.max(...peaks) : null;
  targets.push({
    target: `peak RSS at c${top} ≤ 30 MB`,
    measured: peak === null ? 'n/a' : `${peak.toFixed(1)} MB`,
    met: peak === null ? null : peak <= 30,
  });
}
{
  const kib = ws?.rss?.afterOpenKiB ?? null;
  targets.push({
    target: `${ws ? ws.sessions.toLocaleString('en-US') : '10,000'} idle WebSocket sessions ≤ 150 MB`,
    measured: kib === null ? 'n/a' : `${mb(kib).toFixed(1)} MB`,
    met: kib === null || (ws && ws.opened < 10000) ? null : mb(kib) <= 150 && ws.pass,
  });
}

const fmt = (x, digits) => (x === null || x === undefined ? '—' : x.toFixed(digits));
const num = (x) => (x === null ? '—' : Math.round(x).toLocaleString('en-US'));
const ms = (x) => (x === null ? '—' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const lines = [];
lines.push(`Measured ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} (${options.mode} run): \`${options.command}\``);
lines.push('');
lines.push(`- Machine: ${options.machine}; client, servers and database share it.`);
lines.push(`- Load average (1, 5, 15 min) before and after: ${options.load}.`);
lines.push(`- Versions: ${options.versions}.`);
lines.push(
  `- Threads: Sluice ${options['sluice-io-threads'] === '0' ? 'an I/O thread per CPU (its default)' : `\`io_threads: ${options['sluice-io-threads']}\``}; ` +
    `Toolbox ${options.gomaxprocs === 'default' ? 'GOMAXPROCS unset (its default, one per CPU)' : `\`GOMAXPROCS=${options.gomaxprocs}\``}; DBHub runs its JavaScript on one thread.`,
);
lines.push(
  `- Each cell: ${levels
    .map((c) => {
      const n = Math.max(...rows.filter((r) => r.clients === c).map((r) => r.repeats));
      return `c=${c} ${n === 1 ? 'one run' : `the median of ${n} runs`}`;
    })
    .join(', ')}, each ${options.duration} s after ${options.warmup} s of warm-up; ` +
    'servers interleaved run by run. Every MCP server is driven by `sluice-load --transport http-legacy` ' +
    '(a session per virtual client: `initialize`, then `tools/call` with `Mcp-Session-Id`).',
);
lines.push('');
lines.push('| statement | clients | system | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU µs/req | DB CPU µs/req | peak RSS MB |');
lines.push('|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const r of rows) {
  const cpu = r.system === 'odbc' && r.server_cpu_us !== null ? `(${fmt(r.server_cpu_us, 0)})` : fmt(r.server_cpu_us, 0);
  lines.push(
    `| ${SCENARIOS[r.scenario]} | ${r.clients} | ${LABELS[r.system]} | ${num(r.rps)} | ${r.system === 'pgbench' ? `(${ms(r.mean)})` : ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${r.errors} | ${cpu} | ${fmt(r.db_cpu_us, 0)} | ${fmt(r.peak_rss_mb, 1)} |`,
  );
}
lines.push('');
lines.push(
  'Server CPU is the server process over the measured window per answered request; the ODBC ' +
    "floor's figure in parentheses is its own (client) CPU: driver, fetch, nothing else. DB CPU is " +
    'the PostgreSQL postmaster and backends. Peak RSS is VmHWM, reset before each run; MB are 10^6 bytes. ' +
    'pgbench reads the clock once per batch of ready clients (many of its logged latencies are 0), so ' +
    'its percentiles are not shown; in parentheses its mean latency, clients ÷ throughput, as pgbench reports it.',
);
{
  // What the gateway's own work costs against what the transport alone allows.
  const c = row('ceiling', 'select1');
  const p = row('pgbench', 'select1');
  const g = row('sluice', 'select1');
  if (c?.rps) {
    const parts = [
      'The ceiling (`bench/http_ceiling`) answers every call with the bytes Sluice returned for the same ' +
        'statement and does nothing else: no database, no JSON parsing, no sessions. It is what the load ' +
        'generator and loopback TCP on this machine allow any MCP server here',
    ];
    if (p?.rps) {
      parts.push(
        `; on SELECT 1 at c=${top} it reached ${num(c.rps)} req/s, ${(c.rps / p.rps).toFixed(2)}x pgbench, ` +
          `with ${fmt(c.server_cpu_us, 1)} µs of its own CPU per request and PostgreSQL idle`,
      );
    }
    if (g?.rps) parts.push(`; Sluice reached ${(g.rps / c.rps).toFixed(2)}x the ceiling`);
    lines.push('');
    lines.push(`${parts.join('')}.`);
  }
}
if (checks.length) {
  const describe = (c) => {
    if (c.check.error) return `${LABELS[c.system] ?? c.system}: failed (${c.check.error})`;
    const rowsSeen = c.scenario === 'rows100' ? `${c.check.matches} rows in the text, ` : '';
    return `${LABELS[c.system]} ${rowsSeen}${c.check.bytes.toLocaleString('en-US')} bytes`;
  };
  lines.push('');
  lines.push(
    'One call of each tool before timing, to check the answers match (the JSON-RPC response): ' +
      Object.keys(SCENARIOS)
        .map((s) => `${SCENARIOS[s]}: ${checks.filter((c) => c.scenario === s).map(describe).join(', ')}`)
        .join('; ') +
      '.',
  );
}
if (ws) {
  lines.push('');
  lines.push(
    `WebSocket: ${ws.opened.toLocaleString('en-US')} of ${ws.sessions.toLocaleString('en-US')} sessions opened in ` +
      `${(ws.openMs / 1000).toFixed(1)} s against a fresh Sluice; RSS ${mb(ws.rss.beforeKiB).toFixed(1)} MB before, ` +
      `${mb(ws.rss.afterOpenKiB).toFixed(1)} MB with all open and idle (${ws.rss.perSessionKiB} KiB per session), ` +
      `${mb(ws.rss.peakKiB).toFixed(1)} MB peak while ${ws.calls.toLocaleString('en-US')} of them made one call; ` +
      `${ws.openErrors + ws.errors + ws.timeouts + ws.unexpectedCloses} failures.`,
  );
}
lines.push('');
lines.push('| target | measured | met |');
lines.push('|---|--:|:-:|');
for (const t of targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
// With --baseline: this build against the baseline binary, side by side in the same run.
if (rows.some((r) => r.system === 'sluice-base')) {
  lines.push('');
  lines.push('| this build vs the baseline | clients | req/s | server CPU µs/req | p99 |');
  lines.push('|---|--:|--:|--:|--:|');
  for (const s of Object.keys(SCENARIOS)) {
    for (const c of levels) {
      const a = rows.find((r) => r.system === 'sluice' && r.scenario === s && r.clients === c);
      const b = rows.find((r) => r.system === 'sluice-base' && r.scenario === s && r.clients === c);
      if (!a || !b) continue;
      const x = (f) => (a[f] != null && b[f] ? `${(a[f] / b[f]).toFixed(2)}x` : '—');
      lines.push(`| ${SCENARIOS[s]} | ${c} | ${x('rps')} | ${x('server_cpu_us')} | ${x('p99')} |`);
    }
  }
}
const problems = runs.filter((r) => r.errors > 0 || !r.ok);
if (problems.length) {
  lines.push('');
  lines.push('Errors:');
  for (const r of problems) {
    lines.push(`- ${LABELS[r.system]}, ${SCENARIOS[r.scenario]}, c=${r.clients}, repeat ${r.repeat}: ${r.errors} errors; ${r.error_kinds.join('; ')}`);
  }
}
const markdown = lines.join('\n') + '\n';

writeFileSync(path.join(options.results, 'latest.md'), `# Benchmark: latest run\n\n${markdown}`);
writeFileSync(
  path.join(options.results, 'latest.json'),
  JSON.stringify(
    {
      measured_at: new Date().toISOString(),
      mode: options.mode,
      command: options.command,
      machine: options.machine,
      load_average: options.load,
      versions: options.versions,
      sluice_io_threads: Number(options['sluice-io-threads']),
      toolbox_gomaxprocs: options.gomaxprocs,
      duration_s: Number(options.duration),
      warmup_s: Number(options.warmup),
      rows,
      targets,
      websocket: ws,
      checks,
      runs,
    },
    null,
    2,
  ) + '\n',
);
process.stdout.write(markdown);
