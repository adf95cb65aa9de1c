// trunx dashboard: campaigns with live stats (GET /events, read with fetch so the API key
// travels in a header, never in a URL), and a call page that draws an answered call's AMD
// record (GET /attempts/:id/amd and /audio) on a canvas. No build step, no dependencies.
'use strict';

const STATS = ['total', 'queued', 'dialing', 'completed', 'voicemail', 'humanConnected',
  'noAnswer', 'busy', 'failed'];
const $ = (sel) => document.querySelector(sel);
const state = { key: null, campaigns: new Map(), pending: new Map(), lastEventId: null };

function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ''));
}

function setError(msg) {
  $('#error').textContent = msg || '';
}

function headers() {
  return { Authorization: 'Bearer ' + state.key };
}

async function api(path) {
  const r = await fetch(path, { headers: headers() });
  if (r.status === 401) {
    askKey('the API key was refused');
    throw new Error('unauthorized');
  }
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r;
}

function askKey(why) {
  $('#keyform').hidden = false;
  setError(why || 'enter an API key (trunx keys create --name dashboard)');
}

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// ---- campaigns ----------------------------------------------------------------------------

function campaignRow(c) {
  let tr = document.querySelector(`tr[data-campaign="${CSS.escape(c.id)}"]`);
  if (!tr) {
    tr = document.createElement('tr');
    tr.dataset.campaign = c.id;
    tr.innerHTML = `<td class="name"></td><td class="status"></td>` +
      `<td><span class="bar"><div></div></span> <span class="pct"></span></td>` +
      STATS.map((k) => `<td data-stat="${k}"></td>`).join('');
    $('#campaigns tbody').appendChild(tr);
  }
  tr.querySelector('.name').innerHTML =
    `<a href="#campaign=${encodeURIComponent(c.id)}" title="its calls">${esc(c.name)}</a>`;
  tr.querySelector('.status').textContent = c.status;
  tr.dataset.status = c.status;
  return tr;
}

function showStats(id, s) {
  const tr = document.querySelector(`tr[data-campaign="${CSS.escape(id)}"]`);
  if (!tr) return;
  for (const k of STATS) tr.querySelector(`[data-stat="${k}"]`).textContent = s[k];
  tr.dataset.progress = s.progress;
  tr.dataset.stats = JSON.stringify(s);
  tr.querySelector('.bar > div').style.width = s.progress + '%';
  tr.querySelector('.pct').textContent = s.progress + '%';
}

async function refreshCampaign(id) {
  const [c, s] = await Promise.all([
    api(`/campaigns/${encodeURIComponent(id)}`).then((r) => r.json()),
    api(`/campaigns/${encodeURIComponent(id)}/stats`).then((r) => r.json()),
  ]);
  state.campaigns.set(id, c);
  campaignRow(c);
  showStats(id, s);
}

// Several events in a burst cost one refresh per campaign.
function scheduleRefresh(id) {
  if (state.pending.has(id)) return;
  state.pending.set(id, setTimeout(async () => {
    state.pending.delete(id);
    try { await refreshCampaign(id); } catch (e) { setError(e.message); }
  }, 150));
}

async function loadCampaigns() {
  let cursor = null;
  do {
    const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page = await api(`/campaigns?limit=1000${q}`).then((r) => r.json());
    await Promise.all(page.data.map((c) => refreshCampaign(c.id)));
    cursor = page.nextCursor;
  } while (cursor);
  document.body.dataset.campaignsLoaded = '1';
}

function addCall(ev) {
  if (hashParams().get('campaign')) return;
  const d = ev.data;
  const tr = document.createElement('tr');
  tr.dataset.attempt = d.attemptId;
  const link = d.amdResult ? `<a href="#call=${encodeURIComponent(d.attemptId)}">${esc(d.amdResult)}</a>` : '';
  tr.innerHTML = `<td>${esc(ev.createdAt.slice(11, 19))}</td><td>${esc(d.phone)}</td>` +
    `<td>${esc(d.outcome)}</td><td>${link}</td><td>${d.amdMs == null ? '' : d.amdMs + ' ms'}</td>`;
  const body = $('#calls tbody');
  body.insertBefore(tr, body.firstChild);
  while (body.children.length > 50) body.removeChild(body.lastChild);
}

// A campaign's calls, oldest first, a page at a time.
async function showCampaignCalls(id, cursor) {
  const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
  const page = await api(`/campaigns/${encodeURIComponent(id)}/attempts?limit=200${q}`).then((r) => r.json());
  const body = $('#calls tbody');
  if (!cursor) body.innerHTML = '';
  for (const a of page.data) {
    const tr = document.createElement('tr');
    tr.dataset.attempt = a.id;
    const link = a.answeredMs != null ? `<a href="#call=${encodeURIComponent(a.id)}">${esc(a.amdResult || 'answered')}</a>` : esc(a.amdResult);
    tr.innerHTML = `<td>${esc((a.endedAt || a.startedAt).slice(11, 19))}</td><td>${esc(a.phone)}</td>` +
      `<td>${esc(a.outcome)}</td><td>${link}</td><td>${a.amdMs == null ? '' : a.amdMs + ' ms'}</td>`;
    body.appendChild(tr);
  }
  $('#calls-title').textContent = `Calls of ${state.campaigns.get(id)?.name || id}`;
  const more = $('#more');
  more.hidden = !page.nextCursor;
  more.onclick = () => showCampaignCalls(id, page.nextCursor).catch((e) => setError(e.message));
}

function onEvent(ev) {
  if (ev.type === 'attempt.ended') addCall(ev);
  scheduleRefresh(ev.campaignId);
}

// ---- live events --------------------------------------------------------------------------

function parseBlock(block) {
  let id = null; let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('id:')) id = line.slice(3).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trimStart();
  }
  if (id === null || !data) return null;
  return { id, ev: JSON.parse(data) };
}

async function follow() {
  for (;;) {
    try {
      const h = headers();
      if (state.lastEventId !== null) h['Last-Event-ID'] = state.lastEventId;
      const r = await fetch('/events', { headers: h });
      if (r.status === 401) { askKey('the API key was refused'); return; }
      if (!r.ok) throw new Error('/events: HTTP ' + r.status);
      $('#live').classList.add('on');
      document.body.dataset.live = '1';
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const parsed = parseBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (parsed) { state.lastEventId = parsed.id; onEvent(parsed.ev); }
        }
      }
    } catch (e) {
      setError(e.message);
    }
    $('#live').classList.remove('on');
    document.body.dataset.live = '0';
    await new Promise((res) => setTimeout(res, 1000));
  }
}

// ---- call page ----------------------------------------------------------------------------

function wavSamples(buf) {
  const v = new DataView(buf);
  let off = 12;
  while (off + 8 <= v.byteLength) {
    const id = String.fromCharCode(v.getUint8(off), v.getUint8(off + 1), v.getUint8(off + 2), v.getUint8(off + 3));
    const size = v.getUint32(off + 4, true);
    if (id === 'data') return new Int16Array(buf.slice(off + 8, off + 8 + size));
    off += 8 + size + (size & 1);
  }
  return new Int16Array(0);
}

function marker(kind, label, ms, pxPerMs) {
  const x = Math.round(ms * pxPerMs);
  const m = document.createElement('div');
  m.className = 'marker ' + kind;
  m.dataset.kind = kind;
  m.dataset.atMs = ms;
  m.dataset.x = x;
  // The time the drawn position stands for (what a reader of the page sees).
  m.dataset.ms = Math.round(x / pxPerMs);
  m.style.left = x + 'px';
  m.innerHTML = label ? `<span>${esc(label)} ${ms} ms</span>` : '';
  $('#markers').appendChild(m);
}

function draw(trace, samples) {
  const canvas = $('#wave');
  const ctx = canvas.getContext('2d');
  const W = canvas.width; const H = canvas.height;
  const lastEvent = Math.max(0, ...trace.events.map((e) => Math.max(e.atMs, e.beepEndMs || 0)));
  const duration = Math.max(trace.audioMs, lastEvent + 200, 1000);
  const pxPerMs = W / duration;
  ctx.clearRect(0, 0, W, H);
  // Speech segments.
  ctx.fillStyle = '#b2f2bb';
  for (const p of trace.points) {
    if (p.speech) ctx.fillRect(p.tMs * pxPerMs, 0, trace.blockMs * pxPerMs + 0.5, H);
  }
  // Waveform: min and max of each pixel column.
  ctx.strokeStyle = '#495057';
  ctx.beginPath();
  const perPx = (8 / pxPerMs);
  for (let x = 0; x < W; x++) {
    const a = Math.floor(x * perPx); const b = Math.min(samples.length, Math.floor((x + 1) * perPx));
    if (a >= samples.length) break;
    let lo = 0; let hi = 0;
    for (let i = a; i < b; i++) { if (samples[i] < lo) lo = samples[i]; if (samples[i] > hi) hi = samples[i]; }
    ctx.moveTo(x + 0.5, H / 2 - (hi / 32768) * (H / 2));
    ctx.lineTo(x + 0.5, H / 2 - (lo / 32768) * (H / 2) + 1);
  }
  ctx.stroke();
  // Level (-80..0 dBFS) and model probability (0..1) over the same time axis.
  const line = (color, pts) => {
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke(); ctx.lineWidth = 1;
  };
  line('#1971c2', trace.points.map((p) => [(p.tMs + trace.blockMs / 2) * pxPerMs, H - ((Math.max(-80, p.levelDb) + 80) / 80) * H]));
  line('#f08c00', trace.points.filter((p) => p.modelProbability != null)
    .map((p) => [(p.tMs + trace.blockMs / 2) * pxPerMs, H - p.modelProbability * H]));
  // Markers: the decision (the first event) and the beep.
  $('#markers').innerHTML = '';
  const decision = trace.events[0];
  if (decision) marker('decision', decision.result || decision.kind, decision.atMs, pxPerMs);
  for (const e of trace.events) {
    if (e.beepStartMs != null) {
      marker('beep', 'beep', e.beepStartMs, pxPerMs);
      marker('beep', '', e.beepEndMs, pxPerMs);
    }
  }
  $('#timeline').dataset.pxPerMs = pxPerMs;
  $('#timeline').dataset.durationMs = duration;
}

async function showCall(id) {
  $('#campaigns-view').hidden = true;
  $('#call-view').hidden = false;
  $('#call-id').textContent = id;
  delete document.body.dataset.callReady;
  const trace = await api(`/attempts/${encodeURIComponent(id)}/amd`).then((r) => r.json());
  const wav = await api(`/attempts/${encodeURIComponent(id)}/audio`).then((r) => r.arrayBuffer());
  $('#call-summary').textContent = `${trace.amdResult || 'no decision'}` +
    (trace.amdMs == null ? '' : ` at ${trace.amdMs} ms`) + ` · ${trace.outcome || ''} · ${trace.audioMs} ms of audio`;
  draw(trace, wavSamples(wav));
  const tbody = $('#events tbody');
  tbody.innerHTML = trace.events.map((e) => `<tr><td>${e.atMs} ms</td><td>${esc(e.kind)}</td>` +
    `<td>${esc(e.result)}</td><td>${esc(e.cause)}</td></tr>`).join('');
  const url = URL.createObjectURL(new Blob([wav], { type: 'audio/wav' }));
  const play = $('#play');
  play.disabled = false;
  play.onclick = () => new Audio(url).play();
  document.body.dataset.recordedMs = trace.amdMs ?? '';
  document.body.dataset.callReady = '1';
}

// ---- start --------------------------------------------------------------------------------

async function route() {
  setError('');
  const call = hashParams().get('call');
  const campaign = hashParams().get('campaign');
  try {
    if (call) {
      await showCall(call);
    } else if (campaign) {
      $('#call-view').hidden = true;
      $('#campaigns-view').hidden = false;
      await showCampaignCalls(campaign, null);
    } else {
      if ($('#calls-title').textContent !== 'Recent calls') $('#calls tbody').innerHTML = '';
      $('#calls-title').textContent = 'Recent calls';
      $('#more').hidden = true;
      $('#call-view').hidden = true;
      $('#campaigns-view').hidden = false;
    }
  } catch (e) {
    setError(e.message);
  }
}

async function start() {
  const p = hashParams();
  if (p.get('key')) {
    localStorage.setItem('trunx.key', p.get('key'));
    p.delete('key');
    history.replaceState(null, '', location.pathname + (p.toString() ? '#' + p : ''));
  }
  state.key = localStorage.getItem('trunx.key');
  $('#keyform').addEventListener('submit', (e) => {
    e.preventDefault();
    localStorage.setItem('trunx.key', $('#key').value.trim());
    location.reload();
  });
  if (!state.key) { askKey(); return; }
  window.addEventListener('hashchange', route);
  follow();
  try { await loadCampaigns(); } catch (e) { setError(e.message); }
  await route();
}

start();
