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
let engineUp = false;     // the engine answers (the supervisor says it runs)
let waiting = false;      // the history could not load because the engine was not up yet
let selected = null;      // call_id
let live = [];            // live feed, newest first
let liveSeen = 0;         // calls seen live since the window opened
const knownTools = new Set();
const undoneCalls = new Set(); // calls undone since their record was loaded (their badge says so)

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
  for (const k of ["command", "path", "source", "pattern", "regex", "handle", "packages", "call_id"]) {
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

/** "3 files": a quiet mark on a call that changed files in a read-write workspace. */
function filesBadge(r) {
  const n = r.files_changed;
  if (!n) return null;
  const undone = Boolean(r.undone_by) || undoneCalls.has(r.call_id);
  return h("span", {
    class: "badge files" + (undone ? " undone" : ""),
    title: "changed " + plural(n, "file") + (undone ? "; undone since" : " (select it to see them, or undo)"),
  }, plural(n, "file"), undone ? " · undone" : null);
}

function plural(n, word) {
  return n.toLocaleString() + " " + word + (n === 1 ? "" : "s");
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
  h("span", { class: "details-cell" },
    h("span", { class: "details", title: detailsOf(r) }, visible(detailsOf(r).replace(/\n/g, " ⏎ "))),
    filesBadge(r)),
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
  if (waiting && !rows.length) text = "Waiting for the engine…";
  else if (loading) text = `${n} calls loaded · loading more…`;
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
    if (gen === generation) {
      hasMore = false;
      // Opened while the engine starts: it loads once the engine is up, no error for that.
      if (engineUp) toast("Cannot read the audit log: " + e, true); else waiting = true;
    }
  } finally {
    if (gen === generation) { loading = false; schedule(); }
  }
}

function reset() {
  generation++;
  waiting = false;
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
  if (selected !== r.call_id) undoNote = null;
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
    // What the call changed comes first: for a write it says what the arguments only imply.
    r.files_changed ? changesSection(r) : null,
    h("h3", {}, "Arguments"), h("pre", {}, visible(args)),
    r.summary ? [h("h3", {}, "Result"), h("pre", {}, visible(r.summary))] : null,
    r.error ? [h("h3", {}, "Error"), h("pre", {}, visible(r.error))] : null,
  );
}

// ---- changed files and undo ----

const changesCache = new Map(); // call_id -> the `changes` reply (or a pending promise)
const expanded = new Map();     // call_id -> Set of expanded paths
const showAll = new Set();      // calls whose every changed path is listed (else the first LIST_MAX)
const LIST_MAX = 25;
let undoNote = null;            // { call_id, kind, text }: the last undo's outcome, shown under the buttons

const KINDS = {
  created: { word: "new", cls: "created", title: "created by the call" },
  modified: { word: "edited", cls: "modified", title: "its content changed" },
  deleted: { word: "deleted", cls: "deleted", title: "deleted by the call" },
  mode_changed: { word: "mode", cls: "mode", title: "only its permissions changed" },
  replaced: { word: "replaced", cls: "replaced", title: "something of another kind took its place" },
  changed_inside: { word: "changed", cls: "inside", title: "an excluded folder whose contents changed (not kept)" },
};

/** "/workspaces/project/src/a.rs" → ["project/src/", "a.rs"] */
function splitPath(p) {
  const rel = String(p).replace(/^\/workspaces\//, "");
  const i = rel.lastIndexOf("/", rel.length - 2);
  return i < 0 ? ["", rel] : [rel.slice(0, i + 1), rel.slice(i + 1)];
}

function pathEl(p, cls) {
  const [dir, base] = splitPath(p);
  // Lines break after a "/" rather than inside a name.
  const segments = dir ? dir.split("/").slice(0, -1).map((seg) => [visible(seg + "/"), h("wbr", {})]) : null;
  return h("span", { class: "path " + (cls || ""), title: p }, dir ? h("span", { class: "dir" }, segments) : null, h("span", { class: "base" }, visible(base)));
}

function fmtMode(m) {
  return (Number(m) & 0o7777).toString(8).padStart(3, "0");
}

function fmtSize(n) {
  if (n === null || n === undefined) return "—";
  if (n < 1024) return n.toLocaleString() + " B";
  const units = ["KB", "MB", "GB"];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return (v < 10 ? v.toFixed(1) : Math.round(v)) + " " + units[u];
}

/** A path state in a few words (as `airlock changes` says it). */
function describeState(s) {
  switch (s && s.kind) {
    case "absent": return "absent";
    case "file": return s.hash ? `file ${s.hash.slice(0, 8)} (${fmtMode(s.mode)})` : `a file (${fmtMode(s.mode)})`;
    case "dir": return `a folder (${fmtMode(s.mode)})`;
    case "symlink": return `a symlink to ${s.target}`;
    default: return "unknown";
  }
}

/** What happened to a path since the call, in words a person reads first. */
function conflictWhy(expected, found) {
  const e = expected || {}, f = found || {};
  if (f.kind === "absent") return "deleted since the call";
  if (e.kind === "absent") return "created since the call";
  if (e.kind !== f.kind) return "replaced since the call";
  if (f.kind === "file") {
    const content = e.hash !== f.hash, mode = e.mode !== f.mode;
    if (content && mode) return "edited and its mode changed since the call";
    if (mode) return "its mode changed since the call";
    return "edited since the call";
  }
  return "changed since the call";
}

function changeMeta(c) {
  const bits = [];
  if (c.renamed_from) bits.push(h("span", {}, "renamed from ", pathEl(c.renamed_from, "inline")));
  const b = c.before || {}, a = c.after || {};
  if (b.mode !== undefined && a.mode !== undefined && b.mode !== a.mode) bits.push(h("span", { class: "mono" }, fmtMode(b.mode) + " → " + fmtMode(a.mode)));
  if (c.kind === "changed_inside") bits.push(h("span", {}, "contents changed (an excluded folder)"));
  if (c.kind === "replaced") bits.push(h("span", {}, describeState(b).replace(/ [0-9a-f]{8} /, " ") + " → " + describeState(a).replace(/ [0-9a-f]{8} /, " ")));
  if (a.kind === "symlink" && c.kind !== "replaced") bits.push(h("span", {}, "→ ", h("span", { class: "mono" }, visible(a.target))));
  if (!c.kept) bits.push(h("span", { class: "not-undoable", title: "its earlier state is not kept (hidden, excluded, too large or evicted): undo leaves it as it is" }, "not undoable"));
  return bits;
}

function diffEl(diff) {
  const pre = h("pre", { class: "diff-lines" });
  let header = true;
  for (const line of String(diff).replace(/\n$/, "").split("\n")) {
    // The ---/+++ header repeats the path the row already shows.
    if (header && (line.startsWith("--- ") || line.startsWith("+++ "))) continue;
    header = false;
    let cls = "line";
    if (line.startsWith("@@")) cls += " hunk";
    else if (line.startsWith("+")) cls += " add";
    else if (line.startsWith("-")) cls += " del";
    else if (line.startsWith("\\")) cls += " hunk";
    pre.appendChild(h("span", { class: cls }, visible(line || " ")));
  }
  return pre;
}

function changeBody(c) {
  if (c.diff) return diffEl(c.diff);
  if (c.size_before !== undefined || c.size_after !== undefined) {
    return h("div", { class: "sizes" }, "Binary or not kept: ", h("span", { class: "mono" }, fmtSize(c.size_before) + " → " + fmtSize(c.size_after)));
  }
  return null;
}

function changeRow(callId, c) {
  const kind = KINDS[c.kind] || { word: c.kind, cls: "", title: c.kind };
  const body = changeBody(c);
  const open = expanded.get(callId) || new Set();
  expanded.set(callId, open);
  const isOpen = !!body && open.has(c.path);
  const bodyEl = body ? h("div", { class: "change-body" + (isOpen ? "" : " hidden") }, body) : null;
  const head = h(body ? "button" : "div", {
    class: "change-head",
    type: body ? "button" : null,
    "aria-expanded": body ? String(isOpen) : null,
    title: body ? (c.diff ? "Show the diff" : "Show the sizes") : null,
    onclick: body ? () => {
      const now = bodyEl.classList.toggle("hidden") === false;
      head.setAttribute("aria-expanded", String(now));
      if (now) open.add(c.path); else open.delete(c.path);
    } : null,
  },
  h("span", { class: "chev" + (body ? "" : " none"), "aria-hidden": "true" }, "›"),
  h("span", { class: "kind " + kind.cls, title: kind.title }, kind.word),
  h("span", { class: "change-main" }, pathEl(c.path), h("span", { class: "meta" }, changeMeta(c))));
  return h("li", { class: "change" + (c.kept ? "" : " kept-not"), dataset: { path: c.path, kind: c.kind } }, head, bodyEl);
}

function loadChanges(callId, fresh) {
  if (fresh) changesCache.delete(callId);
  let p = changesCache.get(callId);
  if (!p) {
    p = request("changes", { call_id: callId });
    changesCache.set(callId, p);
    p.catch(() => changesCache.delete(callId)); // a failure is shown, then asked again next time
  }
  return p;
}

function changesSection(r) {
  const box = h("div", { id: "changes", class: "changes", dataset: { callId: r.call_id } },
    h("div", { class: "muted small" }, "Loading the changed files…"));
  const section = [h("h3", {}, "Changed files ", h("span", { class: "count" }, String(r.files_changed))), box];
  loadChanges(r.call_id).then(
    (reply) => { if (box.isConnected) renderChanges(box, r, reply); },
    (e) => { if (box.isConnected) fill(box, h("div", { class: "inline-msg bad", role: "alert" }, "Could not load the changed files: " + e, " ", h("button", { class: "link", onclick: () => showDetail(r) }, "Try again"))); },
  );
  return section;
}

function renderChanges(box, r, reply) {
  const changes = reply.changes || [];
  const open = expanded.get(r.call_id);
  if (!open) expanded.set(r.call_id, new Set(changes.length <= 2 ? changes.filter((c) => changeBody(c)).map((c) => c.path) : []));
  if (reply.undone_by) undoneCalls.add(r.call_id);
  const note = undoNote && undoNote.call_id === r.call_id ? h("div", { id: "undo-msg", class: "inline-msg " + undoNote.kind, role: "status" }, visible(undoNote.text)) : null;
  const undoneLine = reply.undone_by
    ? h("div", { class: "undone-line", id: "undone" }, h("span", { class: "check", "aria-hidden": "true" }, "✓"), " Undone",
      h("span", { class: "muted small" }, " by ", h("span", { class: "mono", title: reply.undone_by }, String(reply.undone_by).slice(0, 8))))
    : null;
  const canSession = reply.session && reply.session !== "user:undo";
  const actions = reply.undone_by ? null : h("div", { class: "undo-actions" },
    h("button", { id: "undo-call", title: "Put back what this call changed", onclick: (e) => startUndo(r, reply, { call_id: r.call_id }, e.currentTarget) }, "Undo"),
    canSession ? h("button", { id: "undo-session", title: "Put back what every call of this session changed, newest first", onclick: (e) => startUndo(r, reply, { session: reply.session }, e.currentTarget) }, "Undo session") : null,
    h("span", { id: "undo-busy", class: "muted small" }));
  const notUndoable = changes.filter((c) => !c.kept).length;
  const shown = showAll.has(r.call_id) ? changes : changes.slice(0, LIST_MAX);
  const more = changes.length - shown.length;
  fill(box,
    undoneLine,
    reply.undone_by ? note : null,
    h("ul", { class: "change-list" }, shown.map((c) => changeRow(r.call_id, c)),
      more ? h("li", { class: "change more" }, h("button", { class: "link", onclick: () => { showAll.add(r.call_id); renderChanges(box, r, reply); } }, `Show ${plural(more, "more path")}`)) : null),
    notUndoable && !reply.undone_by ? h("div", { class: "muted small" }, plural(notUndoable, "path") + " cannot be undone: their earlier state was not kept.") : null,
    actions,
    reply.undone_by ? null : note,
  );
  if (note) requestAnimationFrame(() => note.scrollIntoView({ block: "nearest" })); // the outcome of an undo, in view
  if (reply.undone_by) { schedule(); renderLive(null); } // the badges now say "undone"
}

// ---- the undo confirmation ----

let sheet = null; // { r, target, forced, opener, busy }

async function startUndo(r, reply, target, opener, notice) {
  if (!notice) undoNote = null;
  const busy = $("undo-busy");
  for (const b of document.querySelectorAll(".undo-actions button")) b.disabled = true;
  if (busy) busy.textContent = "Checking…";
  const box = $("changes");
  const oldMsg = $("undo-msg");
  if (oldMsg) oldMsg.remove();
  try {
    const check = await request("undo", Object.assign({ force: false, dry_run: true }, target));
    openSheet(r, reply, target, check.reports || [], opener, notice);
  } catch (e) {
    if (box && box.isConnected) {
      box.appendChild(h("div", { id: "undo-msg", class: "inline-msg bad", role: "alert" }, "Could not check what undo would do: " + e));
    } else toast("Could not check what undo would do: " + e, true);
  } finally {
    for (const b of document.querySelectorAll(".undo-actions button")) b.disabled = false;
    if (busy) busy.textContent = "";
  }
}

/** The tool and time of a call this window knows, else its id. */
function callLabel(id) {
  const rec = rows.find((x) => x.call_id === id) || live.find((x) => x.call_id === id);
  if (!rec) return h("span", { class: "mono" }, String(id).slice(0, 8));
  return [h("span", { class: "mono tool" }, rec.tool), " ", h("span", { class: "muted small" }, fmtTime(rec.time)), " ", h("span", { class: "muted small" }, visible(detailsOf(rec).slice(0, 60)))];
}

function openSheet(r, reply, target, reports, opener, notice) {
  const session = !!target.session;
  const kindOf = new Map((reply.changes || []).map((c) => [c.path, c]));
  const action = (path, callId) => {
    const c = callId === r.call_id ? kindOf.get(path) : null;
    if (!c) return "";
    if (c.before && c.before.kind === "absent") return "removed";
    if (c.after && c.after.kind === "absent") return "restored";
    if (c.kind === "mode_changed") return "mode put back";
    return "earlier content put back";
  };
  // In a session, a path a newer call also changed is checked again once that call is undone:
  // the dry run compares it with what this older call left, which the newer call changed.
  const laterPaths = new Set();
  let conflicts = 0, puts = 0, shadowed = 0;
  const groups = [];
  for (const rep of reports) {
    const res = rep.report || {};
    const paths = res.result === "checked" ? res.paths || [] : [];
    const real = [], later = [];
    for (const c of res.conflicts || []) (laterPaths.has(c.path) ? later : real).push(c);
    conflicts += real.length; shadowed += later.length; puts += paths.length;
    groups.push({ rep, res, paths, real, later });
    for (const p of paths) laterPaths.add(p);
  }
  const body = [];
  for (const g of groups) {
    const { rep, res, paths, real, later } = g;
    const items = [];
    if (session) items.push(h("div", { class: "group-head" }, callLabel(rep.call_id)));
    if (res.result !== "checked") {
      items.push(h("div", { class: "muted small" }, visible(rep.message || res.result)));
    }
    if (real.length) {
      items.push(h("div", { class: "conflicts", role: "alert" },
        h("div", { class: "sub" }, "⚠ Changed since the call"),
        h("ul", {}, real.map((c) => h("li", { class: "conflict", dataset: { path: c.path } },
          pathEl(c.path),
          h("div", { class: "why" }, conflictWhy(c.expected, c.found), ": now ", h("span", { class: "mono" }, describeState(c.found)), ", expected ", h("span", { class: "mono" }, describeState(c.expected))))))));
    }
    if (paths.length) {
      const conflicted = new Set(real.map((c) => c.path));
      items.push(h("div", { class: "sub" }, "Put back"),
        h("ul", { class: "put-back" }, paths.map((p) => h("li", { dataset: { path: p } }, pathEl(p),
          h("span", { class: "action" + (conflicted.has(p) ? " over" : "") }, conflicted.has(p) ? "overwrites the newer change" : action(p, rep.call_id))))));
    }
    if (later.length) {
      items.push(h("div", { class: "muted small later" }, "Also changed by a newer call of this session, undone first; checked again then: ",
        later.map((c, i) => [i ? ", " : "", pathEl(c.path, "inline")])));
    }
    if ((res.not_undoable || []).length) {
      items.push(h("div", { class: "sub" }, "Not undoable (left as they are)"),
        h("ul", { class: "not-undoable-list" }, res.not_undoable.map((p) => h("li", {}, pathEl(p)))));
    }
    body.push(h("div", { class: "group" }, items));
  }
  const what = session ? "every call of this session" : h("span", { class: "mono" }, r.tool);
  fill($("undo-title"), conflicts ? "Undo despite changes?" : "Undo ", conflicts ? null : what, conflicts ? null : "?");
  let lead;
  if (!puts) lead = "Nothing to put back.";
  else if (conflicts) lead = `${plural(conflicts, "path")} changed after ${session ? "these calls" : "the call"}. Undoing anyway replaces ${conflicts === 1 ? "that newer change" : "those newer changes"} with the earlier state; everything else is put back too.`;
  else lead = `${plural(puts, "path")} will be put back as ${puts === 1 ? "it was" : "they were"} before ${session ? "these calls" : "this call"}.`;
  $("undo-lead").textContent = (notice ? notice + " " : "") + lead;
  fill($("undo-body"), body);
  const confirm = $("undo-confirm");
  confirm.textContent = conflicts ? "Undo anyway" : "Undo";
  confirm.className = conflicts ? "primary danger-fill" : "primary";
  confirm.classList.toggle("hidden", !puts);
  confirm.disabled = false;
  $("undo-cancel").textContent = puts ? "Cancel" : "Close";
  $("undo-cancel").disabled = false;
  $("undo-error").classList.add("hidden");
  // Undone meanwhile (another window, the CLI): the detail is out of date; refreshed on close.
  const stale = reports.some((x) => x.report && x.report.result === "already_undone");
  if (stale) for (const x of reports) changesCache.delete(x.call_id);
  sheet = { r, reply, target, forced: conflicts > 0, opener, busy: false, stale };
  setInert(true);
  $("undo-sheet").classList.remove("hidden");
  $("undo-dialog").focus();
}

function setInert(on) {
  for (const el of document.body.children) {
    if (el.id === "undo-sheet" || el.id === "toast" || el.tagName === "SCRIPT") continue;
    if (on) el.setAttribute("inert", ""); else el.removeAttribute("inert");
  }
}

function closeSheet() {
  if (!sheet || sheet.busy) return;
  const { opener, stale, r } = sheet;
  sheet = null;
  $("undo-sheet").classList.add("hidden");
  setInert(false);
  if (stale && selected === r.call_id) showDetail(currentRecord(r));
  const back = opener && opener.isConnected ? opener : $("undo-call");
  if (back) back.focus();
}

async function confirmUndo() {
  if (!sheet || sheet.busy) return;
  if ($("undo-confirm").classList.contains("hidden")) { closeSheet(); return; } // nothing to confirm
  const s = sheet;
  s.busy = true;
  const confirm = $("undo-confirm");
  confirm.disabled = true;
  $("undo-cancel").disabled = true;
  confirm.textContent = "Undoing…";
  try {
    const reply = await request("undo", Object.assign({ force: s.forced, dry_run: false }, s.target));
    const reports = reply.reports || [];
    const ok = reports.length > 0 && reports.every((x) => x.report && ["restored", "already_undone"].includes(x.report.result));
    for (const x of reports) {
      if (x.report && x.report.result === "restored") { undoneCalls.add(x.call_id); changesCache.delete(x.call_id); }
    }
    const restored = reports.filter((x) => x.report && x.report.result === "restored");
    const late = !s.forced && reports.some((x) => x.report && x.report.result === "conflicts");
    s.busy = false;
    closeSheet();
    changesCache.delete(s.r.call_id);
    if (late) {
      // Something changed between the check and the confirmation (nothing of that call was
      // touched): check again, so the sheet shows what stands in the way now.
      undoNote = restored.length ? { call_id: s.r.call_id, kind: "ok", text: restored.map((x) => x.message).join("\n") } : null;
      if (selected === s.r.call_id) showDetail(currentRecord(s.r));
      if (restored.length) reset();
      await startUndo(s.r, s.reply, s.target, s.opener, "Something changed after the check.");
      return;
    }
    const text = reports.map((x) => x.message).filter(Boolean).join("\n") || "Nothing was undone.";
    undoNote = { call_id: s.r.call_id, kind: ok ? "ok" : "warn", text };
    if (selected === s.r.call_id) showDetail(currentRecord(s.r));
    reset();
  } catch (e) {
    s.busy = false;
    confirm.disabled = false;
    $("undo-cancel").disabled = false;
    confirm.textContent = s.forced ? "Undo anyway" : "Undo";
    const err = $("undo-error");
    err.textContent = "Undo failed: " + e;
    err.classList.remove("hidden");
  }
}

/** The newest copy of a record this window holds. */
function currentRecord(r) {
  return rows.find((x) => x.call_id === r.call_id) || live.find((x) => x.call_id === r.call_id) || r;
}

$("undo-cancel").addEventListener("click", closeSheet);
$("undo-confirm").addEventListener("click", confirmUndo);
$("undo-sheet").addEventListener("mousedown", (e) => { if (e.target === $("undo-sheet")) closeSheet(); });
document.addEventListener("keydown", (e) => {
  if (!sheet) return;
  if (e.key === "Escape") { e.preventDefault(); closeSheet(); return; }
  if (e.key === "Enter" && !e.isComposing) {
    // Enter on Cancel cancels (the button's own click); anywhere else in the sheet it confirms.
    if (document.activeElement === $("undo-cancel")) return;
    e.preventDefault();
    confirmUndo();
    return;
  }
  if (e.key === "Tab") { // keep the focus in the sheet
    const stops = [...$("undo-dialog").querySelectorAll("button:not(.hidden):not(:disabled)")];
    if (!stops.length) return;
    const i = stops.indexOf(document.activeElement);
    const next = e.shiftKey ? (i <= 0 ? stops.length - 1 : i - 1) : (i + 1) % stops.length;
    e.preventDefault();
    stops[next].focus();
  }
}, true);

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
  engineUp = !!snap.engine && snap.engine.state === "running";
  if (engineUp && waiting) reset();
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
