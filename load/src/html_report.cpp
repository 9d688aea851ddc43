#include "load/src/html_report.hpp"

#include <string_view>

namespace sluice::load {
namespace {

constexpr std::string_view kHead = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sluice-load report</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f5f8}
header{padding:16px 28px;background:#1d2330;color:#fff}
header h1{margin:0;font-size:20px;font-weight:600}
header .sub{opacity:.8;font-size:13px;margin-top:4px}
main{padding:18px 28px;max-width:1180px}
.verdict{display:inline-block;padding:1px 10px;border-radius:10px;font-size:13px;margin-left:10px;vertical-align:2px}
.pass{background:#2e9d5b;color:#fff}.fail{background:#d2453b;color:#fff}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 16px}
.card{background:#fff;border-radius:8px;padding:8px 14px;min-width:110px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .v{font-size:19px;font-weight:600;font-variant-numeric:tabular-nums}.card .k{font-size:12px;color:#667}
section{background:#fff;border-radius:8px;padding:12px 16px 10px;margin:0 0 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:15px;margin:0 0 6px;font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2;font-variant-numeric:tabular-nums;vertical-align:top}
th{font-weight:600;color:#445}td.n,th.n{text-align:right}
.ok{color:#2e9d5b;font-weight:600}.bad{color:#d2453b;font-weight:600}
.muted{color:#889}
svg{display:block;width:100%;height:auto}
svg text{font-size:11px;fill:#556;font-family:inherit}
.legend{font-size:12px;margin:2px 0 0 50px}.legend span{margin-right:16px;white-space:nowrap}
.legend i{display:inline-block;width:14px;height:3px;margin-right:5px;vertical-align:middle}
.tip{position:fixed;pointer-events:none;background:rgba(29,35,48,.92);color:#fff;font-size:12px;padding:6px 8px;border-radius:5px;display:none;white-space:pre;font-variant-numeric:tabular-nums}
pre{margin:0;font-size:12px;white-space:pre-wrap;word-break:break-word}
</style>
</head>
<body>
<header><h1>sluice-load<span id="verdict" class="verdict"></span></h1><div class="sub" id="sub"></div></header>
<main>
<div class="cards" id="cards"></div>
<section><h2>Throughput</h2><div id="throughput"></div></section>
<section><h2>Latency over time <span class="muted">(successful responses completed in each second)</span></h2><div id="latency"></div></section>
<section><h2>Load</h2><div id="load"></div></section>
<section><h2>Latency distribution <span class="muted">(measured part, successful requests)</span></h2><div id="histogram"></div></section>
<section><h2>Thresholds</h2><div id="thresholds"></div></section>
<section><h2>Errors by kind</h2><div id="errors"></div></section>
<section><h2>Calls</h2><div id="calls"></div></section>
<section><h2>Configuration</h2><pre id="config"></pre></section>
</main>
<div class="tip" id="tip"></div>
<script type="application/json" id="report">)html";

constexpr std::string_view kTail = R"html(</script>
<script>
(function () {
  'use strict';
  var R = JSON.parse(document.getElementById('report').textContent);
  var SVG = 'http://www.w3.org/2000/svg';
  var tip = document.getElementById('tip');

  function node(tag, attrs, parent, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, parent, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  function num(x, digits) {
    if (x === null || x === undefined || isNaN(x)) return 'n/a';
    if (digits === undefined) digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
    return x.toLocaleString('en-US', {minimumFractionDigits: digits, maximumFractionDigits: digits});
  }
  function niceStep(range, count) {
    var raw = range / Math.max(1, count), p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function showTip(evt, text) {
    tip.textContent = text;
    tip.style.display = 'block';
    var x = evt.clientX + 14, y = evt.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = evt.clientX - tip.offsetWidth - 14;
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  var W = 1000, H = 240, L = 56, Rm = 16, T = 10, B = 28;

  // series: [{name, color, values: [y per point], dash}]; xs: x per point (seconds).
  function lineChart(box, xs, series, yUnit) {
    if (!xs.length) { html('p', box, 'No data.', 'muted'); return; }
    var svg = node('svg', {viewBox: '0 0 ' + W + ' ' + H, role: 'img'}, box);
    var xmax = Math.max(1, xs[xs.length - 1] + 1), ymax = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v > ymax) ymax = v; }); });
    if (ymax <= 0) ymax = 1;
    var ystep = niceStep(ymax, 5);
    ymax = Math.ceil(ymax * 1.05 / ystep) * ystep;
    var pw = W - L - Rm, ph = H - T - B;
    function X(x) { return L + x / xmax * pw; }
    function Y(y) { return T + ph - y / ymax * ph; }
    var warm = R.timeseries.filter(function (p) { return p.warmup; }).length;
    if (warm > 0) {
      node('rect', {x: X(0), y: T, width: X(warm) - X(0), height: ph, fill: '#eef0f4'}, svg);
      node('text', {x: X(0) + 4, y: T + 12}, svg, 'warmup');
    }
    for (var y = 0; y <= ymax + 1e-9; y += ystep) {
      node('line', {x1: L, x2: L + pw, y1: Y(y), y2: Y(y), stroke: '#e6e8ee'}, svg);
      node('text', {x: L - 6, y: Y(y) + 4, 'text-anchor': 'end'}, svg, num(y, ystep < 1 ? 2 : 0));
    }
    var xstep = Math.max(1, niceStep(xmax, 10));
    for (var x = 0; x <= xmax; x += xstep) {
      node('text', {x: X(x), y: H - 10, 'text-anchor': 'middle'}, svg, x + 's');
    }
    node('line', {x1: L, x2: L + pw, y1: T + ph, y2: T + ph, stroke: '#99a'}, svg);
    // A null value (no data that second) breaks the line instead of dropping it to zero.
    series.forEach(function (s) {
      var runs = [[]];
      xs.forEach(function (x, i) {
        var v = s.values[i];
        if (v === null || v === undefined) { if (runs[runs.length - 1].length) runs.push([]); return; }
        runs[runs.length - 1].push(X(x + 0.5).toFixed(1) + ',' + Y(v).toFixed(1));
      });
      runs.forEach(function (pts) {
        if (pts.length === 1) {
          var xy = pts[0].split(',');
          node('circle', {cx: xy[0], cy: xy[1], r: 2, fill: s.color}, svg);
        } else if (pts.length > 1) {
          node('polyline', {points: pts.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 1.8,
                            'stroke-dasharray': s.dash || '', 'stroke-linejoin': 'round'}, svg);
        }
      });
    });
    var cursor = node('line', {x1: 0, x2: 0, y1: T, y2: T + ph, stroke: '#556', 'stroke-width': 0.6, visibility: 'hidden'}, svg);
    var hit = node('rect', {x: L, y: T, width: pw, height: ph, fill: 'transparent'}, svg);
    hit.addEventListener('mousemove', function (evt) {
      var r = svg.getBoundingClientRect();
      var px = (evt.clientX - r.left) / r.width * W;
      var t = Math.floor((px - L) / pw * xmax), i = xs.indexOf(t);
      if (i < 0) { hideTip(); return; }
      cursor.setAttribute('x1', X(t + 0.5)); cursor.setAttribute('x2', X(t + 0.5));
      cursor.setAttribute('visibility', 'visible');
      var lines = ['t = ' + t + 's' + (R.timeseries[i].warmup ? ' (warmup)' : '')];
      series.forEach(function (s) {
        lines.push(s.name + ': ' + (s.values[i] === null ? '-' : num(s.values[i]) + (yUnit ? ' ' + yUnit : '')));
      });
      showTip(evt, lines.join('\n'));
    });
    hit.addEventListener('mouseleave', function () { hideTip(); cursor.setAttribute('visibility', 'hidden'); });
    var legend = html('div', box, null, 'legend');
    series.forEach(function (s) {
      var item = html('span', legend);
      var sw = html('i', item);
      sw.style.background = s.color;
      item.appendChild(document.createTextNode(s.name));
    });
  }

  function histogram(box, bins, marks) {
    if (!bins.length) { html('p', box, 'No successful request.', 'muted'); return; }
    var svg = node('svg', {viewBox: '0 0 ' + W + ' ' + H, role: 'img'}, box);
    var lo = Math.log10(bins[0].from_ms), hi = Math.log10(bins[bins.length - 1].to_ms);
    if (hi - lo < 1) { lo = Math.floor(lo); hi = Math.max(hi, lo + 1); }
    var cmax = 0;
    bins.forEach(function (b) { if (b.count > cmax) cmax = b.count; });
    var pw = W - L - Rm, ph = H - T - B;
    function X(v) { return L + (Math.log10(v) - lo) / (hi - lo) * pw; }
    function Y(c) { return T + ph - c / (cmax * 1.1) * ph; }
    var cstep = niceStep(cmax, 4);
    for (var c = 0; c <= cmax; c += cstep) {
      node('line', {x1: L, x2: L + pw, y1: Y(c), y2: Y(c), stroke: '#e6e8ee'}, svg);
      node('text', {x: L - 6, y: Y(c) + 4, 'text-anchor': 'end'}, svg, num(c, 0));
    }
    for (var d = Math.ceil(lo); d <= Math.floor(hi); d++) {
      var v = Math.pow(10, d);
      node('line', {x1: X(v), x2: X(v), y1: T, y2: T + ph, stroke: '#e6e8ee'}, svg);
      node('text', {x: X(v), y: H - 10, 'text-anchor': 'middle'}, svg, (v >= 1 ? num(v, 0) : String(v)) + ' ms');
    }
    bins.forEach(function (b) {
      var x0 = X(b.from_ms), x1 = X(b.to_ms);
      var bar = node('rect', {x: x0 + 0.5, y: Y(b.count), width: Math.max(1, x1 - x0 - 1), height: T + ph - Y(b.count), fill: '#4c78c8'}, svg);
      bar.addEventListener('mousemove', function (evt) {
        showTip(evt, num(b.from_ms, 3) + ' – ' + num(b.to_ms, 3) + ' ms\n' + num(b.count, 0) + ' requests');
      });
      bar.addEventListener('mouseleave', hideTip);
    });
    marks.forEach(function (m) {
      if (m.value === null || m.value === undefined || m.value <= 0) return;
      var x = X(m.value);
      node('line', {x1: x, x2: x, y1: T, y2: T + ph, stroke: m.color, 'stroke-width': 1.4, 'stroke-dasharray': '4 3'}, svg);
      var right = x + 110 > L + pw;
      node('text', {x: right ? x - 3 : x + 3, y: T + 11 + m.row * 12, fill: m.color,
                    'text-anchor': right ? 'end' : 'start', stroke: '#fff', 'stroke-width': 3,
                    'paint-order': 'stroke'}, svg, m.name + ' ' + num(m.value) + ' ms');
    });
    node('line', {x1: L, x2: L + pw, y1: T + ph, y2: T + ph, stroke: '#99a'}, svg);
  }

  function table(box, head, rows, numeric) {
    if (!rows.length) { html('p', box, 'None.', 'muted'); return; }
    var t = html('table', box), tr = html('tr', html('thead', t));
    head.forEach(function (h, i) { html('th', tr, h, numeric[i] ? 'n' : ''); });
    var body = html('tbody', t);
    rows.forEach(function (r) {
      var row = html('tr', body);
      r.forEach(function (cell, i) {
        if (cell && typeof cell === 'object') html('td', row, cell.text, cell.cls);
        else html('td', row, cell, numeric[i] ? 'n' : '');
      });
    });
  }

  var C = R.config, S = R.summary, lat = S.latency_ms || {};
  var verdict = document.getElementById('verdict');
  verdict.textContent = R.passed ? 'PASSED' : 'FAILED';
  verdict.className = 'verdict ' + (R.passed ? 'pass' : 'fail');
  document.getElementById('sub').textContent =
      (C.scenario ? 'scenario ' + C.scenario.name + ' · ' : '') + C.transport + ' · ' + C.url + ' · ' +
      C.mode + ' loop · started ' + R.started_at;
  document.title = 'sluice-load: ' + (C.scenario ? C.scenario.name : '') + ' ' + (R.passed ? 'passed' : 'failed');

  var cards = document.getElementById('cards');
  [['ok requests/s', num(S.rps, 1)], ['requests', num(S.requests, 0)],
   ['errors', num(100 * S.error_rate, 2) + ' %'], ['p50', num(lat.p50) + ' ms'],
   ['p95', num(lat.p95) + ' ms'], ['p99', num(lat.p99) + ' ms'], ['max', num(lat.max) + ' ms'],
   ['measured', num(S.measured_s, 1) + ' s'],
   [C.mode === 'open' ? 'peak connections' : 'peak clients', num(S.peak_clients, 0)]]
      .forEach(function (c) {
        var card = html('div', cards, null, 'card');
        html('div', card, c[1], 'v');
        html('div', card, c[0], 'k');
      });

  var ts = R.timeseries, xs = ts.map(function (p) { return p.t; });
  function col(k) { return ts.map(function (p) { return p[k]; }); }
  var open = C.mode === 'open';
  var throughput = [{name: 'ok/s', color: '#2e9d5b', values: col('ok')},
                    {name: 'errors/s', color: '#d2453b', values: col('errors')}];
  // Open loop: the target is a rate, drawn against what was achieved.
  if (open) throughput.push({name: 'target rate', color: '#99a', dash: '5 4', values: col('target')});
  lineChart(document.getElementById('throughput'), xs, throughput, '/s');
  function latencyCol(k) { return ts.map(function (p) { return p.ok > 0 ? p[k] : null; }); }
  lineChart(document.getElementById('latency'), xs, [
    {name: 'p50', color: '#4c78c8', values: latencyCol('p50_ms')},
    {name: 'p90', color: '#8e6cc0', values: latencyCol('p90_ms')},
    {name: 'p95', color: '#e08a2c', values: latencyCol('p95_ms')},
    {name: 'p99', color: '#d2453b', values: latencyCol('p99_ms')}], 'ms');
  var loadSeries = [{name: open ? 'connections' : 'clients', color: '#4c78c8', values: col('clients')},
                    {name: 'in flight', color: '#e08a2c', values: col('in_flight')}];
  if (!open) loadSeries.unshift({name: 'target clients', color: '#99a', dash: '5 4', values: col('target')});
  lineChart(document.getElementById('load'), xs, loadSeries, '');
  histogram(document.getElementById('histogram'), R.histogram || [], [
    {name: 'p50', value: lat.p50, color: '#2e6b3d', row: 0},
    {name: 'p95', value: lat.p95, color: '#b0661c', row: 1},
    {name: 'p99', value: lat.p99, color: '#b0322a', row: 2}]);

  table(document.getElementById('thresholds'), ['threshold', 'actual', 'verdict'],
        (R.thresholds || []).map(function (t) {
          return [t.expression, t.actual, {text: t.passed ? 'pass' : 'FAIL', cls: t.passed ? 'ok' : 'bad'}];
        }), [false, true, false]);
  var total = S.requests || 0;
  table(document.getElementById('errors'), ['kind', 'count', 'share', 'first message'],
        (R.errors || []).map(function (e) {
          return [e.kind, num(e.count, 0), total ? num(100 * e.count / total, 2) + ' %' : '', e.sample];
        }), [false, true, true, false]);
  table(document.getElementById('calls'), ['call', 'requests', 'errors', 'ok/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
        (R.calls || []).map(function (c) {
          var l = c.latency_ms || {};
          return [c.label, num(c.requests, 0), num(c.errors, 0), num(c.rps, 1), num(l.p50), num(l.p95), num(l.p99), num(l.max)];
        }), [false, true, true, true, true, true, true, true]);
  document.getElementById('config').textContent = JSON.stringify(
      {config: R.config, generator: R.generator, latency_ms: S.latency_ms}, null, 2);
})();
</script>
</body>
</html>
)html";

}  // namespace

std::string render_html_report(const nlohmann::json& report) {
  std::string data = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Inside <script>, "</script" or "<!--" would change how the page parses. '<' occurs only
  // inside JSON strings, where \u003c means the same.
  std::string safe;
  safe.reserve(data.size() + 64);
  for (const char c : data) {
    if (c == '<') {
      safe += "\\u003c";
    } else {
      safe += c;
    }
  }
  std::string out;
  out.reserve(kHead.size() + safe.size() + kTail.size());
  out += kHead;
  out += safe;
  out += kTail;
  return out;
}

}  // namespace sluice::load
