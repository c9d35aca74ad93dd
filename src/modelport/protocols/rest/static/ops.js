// The operations view: polls /ui/api/ops every few seconds and draws each model version's last ten minutes.
'use strict';
const POLL_MS = 3000;
let timer = null;

document.addEventListener('DOMContentLoaded', () => { setupToken(poll); poll(); });

async function poll() {
  clearTimeout(timer);
  try {
    const data = await getJSON('/ui/api/ops');
    showStatus('');
    render(data);
  } catch (e) {
    showStatus(e.status === 401 ? 'This server asks for a bearer token: enter it above and press Save.' : 'Could not load /ui/api/ops: ' + e.message, true);
  }
  timer = setTimeout(poll, POLL_MS);
}

function last(series) {
  for (let i = series.length - 1; i >= 0; i--) if (series[i] !== null && series[i] !== undefined) return series[i];
  return null;
}

function mean(series, n) {
  const tail = series.slice(-n);
  return tail.reduce((a, b) => a + (b || 0), 0) / Math.max(tail.length, 1);
}

// A sparkline over the ten-minute window; isolated points (neighbours empty) are drawn as dots.
function chart(title, series, unit, extra, rate) {
  const w = 240, h = 64, pad = 3;
  const values = series.map(v => (v === null || v === undefined ? null : v));
  const all = values.concat(extra ? extra : []).filter(v => v !== null);
  const peak = all.length ? Math.max(...all) : 0;
  const max = Math.max(peak, 1e-9);
  const x = i => pad + (w - 2 * pad) * i / Math.max(values.length - 1, 1);
  const y = v => h - pad - (h - 2 * pad) * (v / max);
  const svg = svgEl('svg', {viewBox: '0 0 ' + w + ' ' + h, preserveAspectRatio: 'none', role: 'img',
    'aria-label': title + ' over the last ten minutes, peak ' + fmt(peak) + unit});
  const line = (vals, cls) => {
    let d = '';
    vals.forEach((v, i) => {
      if (v === null) return;
      const joined = i > 0 && vals[i - 1] !== null;
      d += (joined ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
      if (!joined && (i === vals.length - 1 || vals[i + 1] === null)) svg.append(svgEl('circle', {cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2, class: 'dot ' + cls}));
    });
    if (d) svg.append(svgEl('path', {d, class: cls}));
  };
  if (extra) line(extra, 'line extra');
  line(values, 'line');
  const now = rate ? mean(values, 6) : last(values);
  return el('div', {class: 'chart'}, el('h3', {}, title + ' ', el('span', {class: 'now', text: now === null ? '–' : fmt(now) + unit + (rate ? ' (1 min)' : '')})), svg,
    el('span', {class: 'muted', text: peak ? 'peak ' + fmt(peak) + unit : 'none in ten minutes'}));
}

function render(data) {
  document.getElementById('summary').textContent = (data.ready ? 'Ready' : 'Not ready') + (data.draining ? ' · draining' : '') + ' · worker pid ' + data.worker_pid;
  const root = document.getElementById('ops');
  const cards = [];
  for (const [name, model] of Object.entries(data.models)) {
    const series = data.series[name] || {};
    const head = el('tr', {}, ...['version', 'state', 'runtime', 'traffic', 'requests/s (1 min)', 'p50 ms', 'p99 ms', '5xx/s', '4xx/s', 'batches', 'mean batch', 'in flight'].map(t => el('th', {scope: 'col', text: t})));
    const body = el('tbody', {});
    const charts = el('div', {class: 'charts'});
    for (const [version, v] of Object.entries(model.versions)) {
      const s = series[version];
      const b = v.batching || {};
      const meanBatch = b.enabled && b.batches ? (b.rows / b.batches) : null;
      body.append(el('tr', {'data-version': version},
        el('td', {text: version}),
        el('td', {}, el('span', {class: 'pill ' + v.state, text: v.state.toLowerCase()}), v.reason ? ' ' + v.reason : ''),
        el('td', {class: 'runtime', text: [...new Set(Object.values(v.runtime || {}))].join(' · ') || '–'}),
        el('td', {class: 'num', text: (v.traffic * 100).toFixed(0) + '%'}),
        el('td', {class: 'num requests', text: s ? fmt(mean(s.requests_per_s, 6)) : '0'}),
        el('td', {class: 'num', text: s && last(s.p50_ms) !== null ? fmt(last(s.p50_ms)) : '–'}),
        el('td', {class: 'num', text: s && last(s.p99_ms) !== null ? fmt(last(s.p99_ms)) : '–'}),
        el('td', {class: 'num', text: s ? fmt(mean(s.errors_per_s, 6)) : '0'}),
        el('td', {class: 'num', text: s ? fmt(mean(s.client_errors_per_s, 6)) : '0'}),
        el('td', {class: 'num', text: b.enabled ? String(b.batches) + (b.bypassing ? ' (bypassing)' : '') : 'off'}),
        el('td', {class: 'num', text: meanBatch === null ? '–' : fmt(meanBatch)}),
        el('td', {class: 'num', text: String(v.inflight)})));
      if (s) {
        const label = 'v' + version + ' ';
        charts.append(chart(label + 'requests/s', s.requests_per_s, '/s', null, true),
          chart(label + 'latency p99 (p50 faint)', s.p99_ms, ' ms', s.p50_ms, false),
          chart(label + 'errors/s (5xx)', s.errors_per_s, '/s', null, true));
      }
    }
    const total = Object.values(series).reduce((a, s) => a + s.total, 0);
    cards.push(el('section', {class: 'card', 'data-model': name, 'aria-label': 'model ' + name},
      el('h2', {}, name, ' ', el('span', {class: 'muted total', 'data-total': String(total), text: total + ' requests in the last ten minutes'})),
      el('div', {class: 'scroll'}, el('table', {class: 'grid'}, el('thead', {}, head), body)),
      charts));
  }
  for (const [key, stats] of Object.entries(data.shadow || {})) {
    cards.push(el('section', {class: 'card'}, el('h2', {text: 'shadow ' + key}), el('pre', {text: JSON.stringify(stats, null, 2)})));
  }
  root.replaceChildren(...cards);
  const tbody = document.querySelector('#recent tbody');
  tbody.replaceChildren(...data.recent.map(r => el('tr', {},
    el('td', {text: new Date(r.time * 1000).toLocaleTimeString()}),
    el('td', {text: r.model}), el('td', {text: String(r.version)}), el('td', {text: r.protocol}),
    el('td', {class: 'num', text: String(r.status)}), el('td', {class: 'num', text: fmt(r.ms)}),
    el('td', {}, r.error ? el('span', {class: 'error', text: r.error}) : '',
      r.inputs ? el('details', {}, el('summary', {text: 'payload'}), el('pre', {text: JSON.stringify({inputs: r.inputs, outputs: r.outputs})})) : ''))));
}
