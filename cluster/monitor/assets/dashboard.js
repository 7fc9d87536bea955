/* global window, document, location, WebSocket, Node, setTimeout, setInterval, clearInterval, fetch */
// The dashboard page: one WebSocket to the head, tables rebuilt from each state message, uPlot charts fed
// point by point. Message shapes are DashboardMessage in ../monitor-hub.ts. No framework, no build step.
import uPlot from './uplot.js';

const PALETTE = ['#58a6ff', '#3fb950', '#d29922', '#f85149', '#bc8cff', '#39c5cf', '#ff7b72', '#e3b341'];
const CHART_HEIGHT = 180;
/** Points kept per chart in the page; the head keeps its own history and sends it on connect. */
const MAX_POINTS = 720;

const charts = new Map(); // chart id -> { history, plot, el }
const runCharts = new Map(); // run panel id -> uPlot
let openRun = null; // the job whose whole-run curves are shown, refreshed while it runs
const RUN_REFRESH_MS = 5000;
let serverOffsetMs = 0; // head clock minus page clock, so ages keep counting between messages
let lastState = null;

connect(1000);
setInterval(() => lastState && renderNodes(lastState), 1000);
window.addEventListener('resize', () => {
  for (const chart of charts.values()) chart.plot?.setSize(chartSize(chart.el));
});

function connect(retryMs) {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  const badge = document.getElementById('connection');
  ws.onopen = () => {
    badge.dataset.connected = 'true';
    badge.textContent = 'live';
    retryMs = 1000;
  };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = () => {
    badge.dataset.connected = 'false';
    badge.textContent = 'disconnected; retrying';
    setTimeout(() => connect(Math.min(retryMs * 2, 15000)), retryMs);
  };
}

function onMessage(message) {
  if (message.type === 'snapshot') {
    for (const history of message.data.charts) setChart(history);
  } else if (message.type === 'tick') {
    for (const [id, point] of Object.entries(message.points)) appendPoint(id, point);
  }
  renderState(message.data);
}

function renderState(state) {
  lastState = state;
  serverOffsetMs = state.now - Date.now();
  document.getElementById('updated').textContent = `updated ${new Date(state.now).toLocaleTimeString()}`;
  renderNodes(state);
  renderJobs(state.jobs);
  renderActors(state.actors, state.nodes);
  renderTables(state.tables);
}

function renderNodes(state) {
  const sinceMessage = (Date.now() + serverOffsetMs - state.now) / 1000;
  const rows = state.nodes.map((n) => {
    const age =
      n.heartbeatAgeSeconds === null ? '–' : `${(n.heartbeatAgeSeconds + sinceMessage).toFixed(1)} s`;
    const history = el(
      'div',
      { class: 'history' },
      n.history.map((h) =>
        el('span', { 'data-state': h.state, title: `${h.state} at ${new Date(h.at).toLocaleString()}` }),
      ),
    );
    return el('tr', { 'data-rank': n.rank, 'data-state': n.state }, [
      td(n.rank === 0 ? '0 (head)' : n.rank),
      td(badge(n.state)),
      td(n.address ?? ''),
      td(n.resources.cpus),
      td(formatBytes(n.resources.memoryBytes)),
      td(n.resources.gpus.length === 0 ? '–' : n.resources.gpus.map((g) => g.id).join(', ')),
      td(age),
      td(n.actorCount),
      td(history),
    ]);
  });
  replaceRows('nodes', rows, 9, 'no nodes yet');
}

function renderJobs(jobs) {
  const rows = jobs.map((j) =>
    el('tr', { 'data-job': j.id, 'data-state': j.state, 'data-done': j.progress.done }, [
      td(j.id),
      td(j.kind),
      td(badge(j.state)),
      td(
        el('div', { class: 'progress' }, [
          el('progress', { max: Math.max(1, j.progress.total), value: j.progress.done }),
          el(
            'span',
            { class: 'progress-text' },
            `${j.progress.done}/${j.progress.total} (${Math.round(j.progressRatio * 100)}%)`,
          ),
        ]),
      ),
      td(j.etaSeconds === null ? '–' : formatDuration(j.etaSeconds)),
      el('td', { class: 'job-detail' }, j.detail ?? '–'),
      td([
        ...j.resultLinks.map((r) =>
          r.href === null
            ? el('span', {}, r.label)
            : el('a', { href: r.href, target: '_blank', rel: 'noopener' }, r.label),
        ),
        ...(j.resultLinks.some((r) => r.label === 'metrics') ? [curvesButton(j.id)] : []),
      ]),
    ]),
  );
  replaceRows('jobs', rows, 7, 'no jobs');
  if (openRun !== null) {
    const job = jobs.find((j) => j.id === openRun.id);
    openRun.running = job !== undefined && (job.state === 'running' || job.state === 'queued');
  }
}

function curvesButton(jobId) {
  const button = el('button', { type: 'button', class: 'curves', 'data-curves': jobId }, 'curves');
  button.addEventListener('click', () => showRun(jobId));
  return button;
}

/** Shows a job's per-step curves over its whole run, and a link to what it wrote at each step. */
async function showRun(jobId) {
  if (openRun?.id !== jobId) {
    clearInterval(openRun?.timer);
    openRun = {
      id: jobId,
      running: true,
      timer: setInterval(() => openRun?.running && loadRun(jobId), RUN_REFRESH_MS),
    };
  }
  await loadRun(jobId);
  document.getElementById('run-section').scrollIntoView({ block: 'start' });
}

async function loadRun(jobId) {
  const section = document.getElementById('run-section');
  section.hidden = false;
  document.getElementById('run-title').textContent = `Run ${jobId}`;
  const base = `/api/jobs/${encodeURIComponent(jobId)}`;
  const res = await fetch(`${base}/history`);
  const status = document.getElementById('run-status');
  if (!res.ok) {
    status.textContent = (await res.text()).trim();
    return;
  }
  const history = await res.json();
  const steps = Math.max(0, ...history.panels.map((p) => p.x.at(-1) ?? 0));
  status.textContent =
    `${steps} steps` + (history.skipped > 0 ? `, ${history.skipped} unreadable lines skipped` : '');
  const grid = document.getElementById('run-charts');
  for (const panel of history.panels) {
    const id = `run-${panel.id}`;
    let box = document.getElementById(id);
    if (box === null) {
      box = el('div', { class: 'chart', id }, el('h3', {}, panel.title));
      grid.append(box);
    }
    runCharts.get(id)?.destroy();
    box.querySelector('.empty')?.remove();
    if (panel.x.length === 0 || panel.series.every((s) => s.values.every((v) => v === null))) {
      box.append(el('div', { class: 'empty' }, 'no data yet'));
    }
    runCharts.set(
      id,
      new uPlot(
        {
          ...chartSize(box),
          axes: [
            axis(),
            { ...axis(), size: 70, values: (_u, ticks) => ticks.map((t) => formatValue(t, panel.unit)) },
          ],
          series: [
            { label: 'step' },
            ...panel.series.map((s, i) => ({
              label: s.label,
              stroke: PALETTE[i % PALETTE.length],
              width: 1.5,
              spanGaps: true,
              points: { show: true, size: 4 },
              value: (_u, v) => formatValue(v, panel.unit),
            })),
          ],
          scales: { x: { time: false } },
        },
        [panel.x, ...panel.series.map((s) => s.values)],
        box,
      ),
    );
  }
  const rows = history.steps.map((s) =>
    el('tr', { 'data-step': s.step, 'data-type': s.type }, [
      td(s.step),
      td(s.type),
      td(
        s.files.map((f) =>
          el(
            'a',
            {
              href: `${base}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`,
              target: '_blank',
              rel: 'noopener',
            },
            f.path,
          ),
        ),
      ),
    ]),
  );
  replaceRows('run-steps', rows, 3, 'no step files yet');
}

function renderActors(actors, nodes) {
  const container = document.getElementById('actors');
  const byNode = new Map(nodes.map((n) => [n.rank, []]));
  for (const a of actors) (byNode.get(a.node) ?? byNode.set(a.node, []).get(a.node)).push(a);
  const blocks = [...byNode].map(([rank, list]) =>
    el('div', { 'data-actors-of': rank }, [
      el('h3', {}, `node ${rank}`),
      el('table', {}, [
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ['actor', 'kind', 'state', 'restarts', 'mailbox'].map((h) => el('th', {}, h)),
          ),
        ),
        el(
          'tbody',
          {},
          list.length === 0
            ? [el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'no actors'))]
            : list.map((a) =>
                el('tr', { 'data-actor': a.path }, [
                  td(a.path),
                  td(a.kind),
                  td(badge(a.state)),
                  td(a.restarts),
                  td(a.mailboxDepth ?? '–'),
                ]),
              ),
        ),
      ]),
    ]),
  );
  container.replaceChildren(...blocks);
}

function renderTables(tables) {
  for (const table of tables) {
    const box = panelBox(table.section, table.id, table.title);
    box.querySelector('.chart-body')?.remove();
    const body = el('table', { class: 'chart-body' }, [
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          table.columns.map((c) => el('th', {}, c)),
        ),
      ),
      el(
        'tbody',
        {},
        table.rows.length === 0
          ? [el('tr', {}, el('td', { colspan: table.columns.length, class: 'muted' }, 'no data yet'))]
          : table.rows.map((r) =>
              el(
                'tr',
                {},
                r.map((v) => td(v ?? '–')),
              ),
            ),
      ),
    ]);
    box.append(body);
  }
}

function setChart(history) {
  const box = panelBox(history.section, history.id, history.title);
  const chart = charts.get(history.id) ?? { el: box, plot: null, labels: '' };
  chart.history = history;
  charts.set(history.id, chart);
  drawChart(chart);
}

function appendPoint(id, point) {
  const chart = charts.get(id);
  if (chart === undefined) return;
  const h = chart.history;
  h.x.push(point.x);
  for (const s of h.series) s.values.push(point.values[s.label] ?? null);
  for (const [label, value] of Object.entries(point.values)) {
    if (!h.series.some((s) => s.label === label))
      h.series.push({ label, values: [...new Array(h.x.length - 1).fill(null), value] });
  }
  if (h.x.length > MAX_POINTS) {
    const drop = h.x.length - MAX_POINTS;
    h.x.splice(0, drop);
    for (const s of h.series) s.values.splice(0, drop);
  }
  drawChart(chart);
}

function drawChart(chart) {
  const h = chart.history;
  const hasData = h.series.some((s) => s.values.some((v) => v !== null));
  chart.el.querySelector('.empty')?.remove();
  if (!hasData) chart.el.append(el('div', { class: 'empty' }, 'no data yet'));
  const data = [h.x, ...h.series.map((s) => s.values)];
  const labels = h.series.map((s) => s.label).join('\n');
  if (chart.plot !== null && labels === chart.labels) {
    chart.plot.setData(data);
    return;
  }
  // A new line appeared (a new job, rank or error code): uPlot's series are fixed, so build it again.
  chart.plot?.destroy();
  chart.labels = labels;
  chart.plot = new uPlot(
    {
      ...chartSize(chart.el),
      axes: [
        axis(),
        { ...axis(), size: 70, values: (_u, ticks) => ticks.map((t) => formatValue(t, h.unit)) },
      ],
      series: [
        {},
        ...h.series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          spanGaps: true,
          value: (_u, v) => formatValue(v, h.unit),
        })),
      ],
      scales: { x: { time: true } },
    },
    data,
    chart.el,
  );
}

function axis() {
  return { stroke: '#8b96a3', grid: { stroke: '#2b3440' }, ticks: { stroke: '#2b3440' } };
}

function chartSize(box) {
  return { width: Math.max(300, box.clientWidth - 12), height: CHART_HEIGHT };
}

/** The box for a chart or table, created under its section heading the first time it is seen. */
function panelBox(section, id, title) {
  const existing = document.getElementById(`panel-${id}`);
  if (existing !== null) return existing;
  const sectionId = `section-${section.toLowerCase().replace(/\W+/g, '-')}`;
  let grid = document.querySelector(`#${sectionId} .grid`);
  if (grid === null) {
    const block = el('section', { id: sectionId }, [el('h2', {}, section), el('div', { class: 'grid' })]);
    document.getElementById('panels').append(block);
    grid = block.querySelector('.grid');
  }
  const box = el('div', { class: 'chart', id: `panel-${id}` }, el('h3', {}, title));
  grid.append(box);
  return box;
}

function replaceRows(tableId, rows, columns, emptyText) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(
    ...(rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: columns, class: 'muted' }, emptyText))]),
  );
}

function badge(state) {
  return el('span', { class: 'badge', 'data-state': state }, state);
}

function td(content) {
  return el('td', {}, content);
}

function el(tag, attrs, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const child of Array.isArray(children) ? children : [children])
    node.append(child instanceof Node ? child : String(child));
  return node;
}

function formatBytes(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 10 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function formatDuration(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

function formatValue(v, unit) {
  if (v === null || v === undefined) return '–';
  if (unit === 'bytes') return formatBytes(v);
  if (unit === 'ratio') return `${(v * 100).toFixed(1)}%`;
  const text = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2);
  return unit === '' ? text : `${text} ${unit}`;
}
