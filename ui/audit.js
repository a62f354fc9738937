// The audit log: a live feed on top, history below. History is fetched from the engine in pages
// of PAGE records as the user scrolls, and only the rows in view are in the DOM, so a log of
// 100k calls scrolls as smoothly as one of ten.
"use strict";

const { h, fill, visible, invoke, request, on, fmtTime, fmtDuration, toast } = Airlock;
const PAGE = 100;
const ROW_H = 30;
const LIVE_MAX = 50;

let rows = [];            // history, newest first
let nextBefore = null;    // cursor for the next page
let hasMore = true;
let loading = false;
let generation = 0;       // bumps on every new search, so stale pages are dropped
let selected = null;      // call_id
let live = [];            // live feed, newest first
let liveSeen = 0;         // calls seen live since the window opened
const knownTools = new Set();

const $ = (id) => document.getElementById(id);

function filters() {
  const val = (id) => $(id).value.trim() || null;
  const time = (id) => ($(id).value ? new Date($(id).value).getTime() : null);
  return {
    text: val("q"), tool: val("f-tool"), decision: val("f-decision"), client: val("f-client"),
    workspace: val("f-workspace"), since: time("f-since"), until: time("f-until"),
  };
}

function filtering() {
  return Object.values(filters()).some((v) => v !== null);
}

function detailsOf(r) {
  const a = r.arguments || {};
  if (typeof a !== "object") return String(a);
  for (const k of ["command", "path", "source", "pattern", "regex", "handle", "packages"]) {
    if (a[k] !== undefined) return typeof a[k] === "string" ? a[k] : JSON.stringify(a[k]);
  }
  const s = JSON.stringify(a);
  return s === "{}" ? "" : s;
}

function outcomeBadge(r) {
  if (!r.outcome) return h("span", { class: "badge warn" }, "running");
  const kind = r.outcome === "ok" ? "ok" : (["error", "cancelled"].includes(r.outcome) ? "warn" : "bad");
  return h("span", { class: "badge " + kind }, r.outcome);
}

function decisionBadge(r) {
  return h("span", { class: "badge " + (r.decision === "allowed" ? "ok" : "bad"), title: "decided by " + r.decided_by }, r.decision);
}

function rowEl(r, extra) {
  const el = h("div", {
    class: "rec row-grid" + (r.call_id === selected ? " selected" : "") + (extra || ""),
    dataset: { callId: r.call_id, seq: r.seq },
    onclick: () => select(r),
  },
  h("span", { title: new Date(r.time).toString() }, fmtTime(r.time)),
  h("span", { title: r.client }, r.client),
  h("span", { class: "mono" }, r.tool),
  h("span", { class: "details", title: detailsOf(r) }, visible(detailsOf(r).replace(/\n/g, " ⏎ "))),
  h("span", {}, decisionBadge(r)),
  h("span", {}, outcomeBadge(r)),
  h("span", { class: "num muted" }, fmtDuration(r.duration_ms)));
  return el;
}

// ---- history: paging + windowed rendering ----

let frame = 0;
function schedule() {
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; renderVisible(); });
}

function renderVisible() {
  const sc = $("scroller");
  const spacer = $("spacer");
  spacer.style.height = rows.length * ROW_H + "px";
  const first = Math.max(0, Math.floor(sc.scrollTop / ROW_H) - 8);
  const last = Math.min(rows.length, Math.ceil((sc.scrollTop + sc.clientHeight) / ROW_H) + 8);
  const nodes = [];
  for (let i = first; i < last; i++) {
    const el = rowEl(rows[i]);
    el.style.top = i * ROW_H + "px";
    nodes.push(el);
  }
  fill(spacer, ...nodes);
  if (last >= rows.length - 30) loadMore();
  updateStatus();
}

function updateStatus() {
  const n = rows.length.toLocaleString();
  let text;
  if (loading) text = `${n} calls loaded · loading more…`;
  else if (!rows.length) text = filtering() ? "No calls match." : "No calls recorded yet.";
  else text = hasMore ? `${n} calls loaded · scroll for more` : `${n} call${rows.length === 1 ? "" : "s"}`;
  $("history-status").textContent = text;
}

async function loadMore() {
  if (loading || !hasMore) return;
  loading = true;
  const gen = generation;
  updateStatus();
  try {
    const reply = await request("audit_query", Object.assign(filters(), { before_seq: nextBefore, limit: PAGE }));
    if (gen !== generation) return;
    const recs = reply.records || [];
    const have = new Set(rows.map((r) => r.call_id));
    for (const r of recs) if (!have.has(r.call_id)) rows.push(r);
    recs.forEach((r) => rememberTool(r.tool));
    nextBefore = reply.next_before_seq;
    hasMore = nextBefore !== null && nextBefore !== undefined && recs.length > 0;
  } catch (e) {
    if (gen === generation) { hasMore = false; toast("Cannot read the audit log: " + e, true); }
  } finally {
    if (gen === generation) { loading = false; schedule(); }
  }
}

function reset() {
  generation++;
  rows = [];
  nextBefore = null;
  hasMore = true;
  loading = false;
  $("scroller").scrollTop = 0;
  schedule();
}

function rememberTool(tool) {
  if (knownTools.has(tool)) return;
  knownTools.add(tool);
  $("tools").appendChild(h("option", { value: tool }));
}

// ---- live feed ----

function onAudit(r) {
  rememberTool(r.tool);
  const i = live.findIndex((x) => x.call_id === r.call_id);
  const isNew = i < 0;
  if (isNew) { live.unshift(r); liveSeen++; } else live[i] = r;
  live = live.slice(0, LIVE_MAX);
  renderLive(isNew ? r.call_id : null);
  if (!filtering()) {
    const j = rows.findIndex((x) => x.call_id === r.call_id);
    if (j >= 0) rows[j] = r;
    else if (!rows.length || r.seq > rows[0].seq) {
      rows.unshift(r);
      const sc = $("scroller");
      if (sc.scrollTop > 0) sc.scrollTop += ROW_H; // keep what the user looks at in place
    }
    schedule();
  }
  if (selected === r.call_id) showDetail(r);
}

function renderLive(fresh) {
  fill($("live"), ...live.slice(0, 20).map((r) => rowEl(r, r.call_id === fresh ? " new" : "")));
  $("live-count").textContent = liveSeen ? `${liveSeen.toLocaleString()} since this window opened` : "Calls appear here as they arrive.";
}

// ---- detail ----

function select(r) {
  selected = r.call_id;
  showDetail(r);
  schedule();
  renderLive(null);
}

function showDetail(r) {
  const dd = (label, value) => [h("dt", {}, label), h("dd", {}, value === null || value === undefined || value === "" ? h("span", { class: "muted" }, "—") : value)];
  const args = typeof r.arguments === "string" ? r.arguments : JSON.stringify(r.arguments, null, 2);
  fill($("detail"), 
    h("h2", {}, h("span", { class: "mono" }, r.tool), " ", decisionBadge(r), " ", outcomeBadge(r)),
    h("dl", {},
      dd("Time", new Date(r.time).toLocaleString()),
      dd("Client", r.client),
      dd("Session", h("span", { class: "mono small" }, r.session)),
      dd("Workspace", r.workspace),
      dd("Decided by", r.decided_by),
      dd("Exit code", r.exit_code),
      dd("Duration", fmtDuration(r.duration_ms)),
      dd("Container", r.container ? h("span", { class: "mono small" }, String(r.container).slice(0, 12)) : null),
      dd("Sequence", String(r.seq)),
      dd("Call id", h("span", { class: "mono small" }, r.call_id)),
      dd("Hash", r.mac ? h("span", { class: "mono small" }, r.mac) : h("span", { class: "muted small" }, "verified with “Verify log”")),
    ),
    h("h3", {}, "Arguments"), h("pre", {}, visible(args)),
    r.summary ? [h("h3", {}, "Result"), h("pre", {}, visible(r.summary))] : null,
    r.error ? [h("h3", {}, "Error"), h("pre", {}, visible(r.error))] : null,
  );
}

// ---- verify and export ----

async function verify() {
  const el = $("verify-result");
  el.className = "banner warn";
  el.textContent = "Verifying the whole chain…";
  try {
    const r = await request("audit_verify");
    el.className = "banner " + (r.ok ? "ok" : "bad");
    el.textContent = r.ok
      ? "✓ Log intact: " + String(r.message).replace(/^ok\s*/i, "") + " verified, none edited, removed or reordered"
      : "✗ Log verification FAILED: " + r.message;
  } catch (e) {
    el.className = "banner bad";
    el.textContent = "Could not verify: " + e;
  }
}

async function choosePath() {
  const format = $("export-format").value;
  try {
    const path = await invoke("pick_save_path", { format });
    if (path) $("export-path").value = path;
  } catch (e) {
    toast("No save dialog here; type a path instead (" + e + ")", true);
  }
}

async function runExport() {
  const format = $("export-format").value;
  const path = $("export-path").value.trim();
  const out = $("export-result");
  if (!path) { out.textContent = "Type a path or choose one."; return; }
  out.textContent = "Exporting…";
  try {
    const r = await request("audit_export", { format, path });
    out.textContent = `Exported ${Number(r.records).toLocaleString()} calls to ${r.path}`;
  } catch (e) {
    out.textContent = "Export failed: " + e;
  }
}

// ---- wiring ----

let debounce = null;
for (const id of ["q", "f-tool", "f-client", "f-workspace"]) {
  $(id).addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(reset, 250); });
}
for (const id of ["f-decision", "f-since", "f-until"]) $(id).addEventListener("change", reset);
$("clear").addEventListener("click", () => {
  for (const id of ["q", "f-tool", "f-decision", "f-client", "f-workspace", "f-since", "f-until"]) $(id).value = "";
  reset();
});
$("scroller").addEventListener("scroll", schedule, { passive: true });
window.addEventListener("resize", schedule);
$("verify").addEventListener("click", verify);
$("export-toggle").addEventListener("click", () => $("export").classList.toggle("hidden"));
$("export-choose").addEventListener("click", choosePath);
$("export-run").addEventListener("click", runExport);
$("export-format").addEventListener("change", () => {
  const p = $("export-path");
  p.placeholder = "/path/to/airlock-audit." + $("export-format").value;
  p.value = p.value.replace(/\.(jsonl|csv)$/, "." + $("export-format").value);
});
$("scroller").addEventListener("keydown", (e) => {
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
  e.preventDefault();
  let i = rows.findIndex((r) => r.call_id === selected);
  i = Math.max(0, Math.min(rows.length - 1, i + (e.key === "ArrowDown" ? 1 : -1)));
  if (rows[i]) {
    select(rows[i]);
    const sc = $("scroller");
    if (i * ROW_H < sc.scrollTop) sc.scrollTop = i * ROW_H;
    else if ((i + 1) * ROW_H > sc.scrollTop + sc.clientHeight) sc.scrollTop = (i + 1) * ROW_H - sc.clientHeight;
  }
});

function showEngine(snap) {
  const line = Airlock.engineLine(snap);
  const el = $("engine");
  el.className = "badge " + line.kind;
  el.textContent = line.text;
}

async function init() {
  let snap = await invoke("snapshot");
  showEngine(snap);
  on("engine", (msg) => {
    if (msg.type === "audit") onAudit(msg.record);
    if (msg.type === "hello") { snap = Object.assign(snap, { engine: { state: "running" }, engine_version: msg.engine_version }); showEngine(snap); reset(); }
  });
  on("supervisor", (p) => { if (p.engine) { snap.engine = p.engine; showEngine(snap); } });
  reset();
}

init().catch((e) => toast(String(e), true));
