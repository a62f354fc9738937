// The approval prompt: one window, a queue of pending calls, the head one shown in full.
// Allow buttons arm only after the call has been on screen for ARM_MS and the user has focused
// the prompt, so a keystroke meant for another window never approves anything.
"use strict";

const { h, fill, visible, hasInvisible, invoke, on } = Airlock;
const ARM_MS = 1000;

let queue = [];          // ApprovalRequest[], oldest first
let currentId = null;    // the call on screen
let shownAt = 0;         // when the current call was first drawn
let focused = document.hasFocus();
let sending = new Set(); // ids whose decision is on its way
const ruleEdits = {};    // id -> edited rule text

const $ = (id) => document.getElementById(id);

async function init() {
  const snap = await invoke("snapshot");
  queue = snap.pending || [];
  render();
  on("engine", (msg) => {
    if (msg.type === "approval_request") {
      if (!queue.some((r) => r.id === msg.id)) queue.push(msg);
      render();
    } else if (msg.type === "approval_resolved") {
      queue = queue.filter((r) => r.id !== msg.id);
      sending.delete(msg.id);
      render();
    }
  });
  on("supervisor", (p) => {
    if (p.pending_cleared) { queue = []; render(); }
  });
  setInterval(tick, 250);
}

function markFocused() {
  if (!focused) { focused = true; updateArming(); }
}
window.addEventListener("focus", markFocused);
document.addEventListener("pointerdown", markFocused, true);
window.addEventListener("blur", () => { focused = false; updateArming(); });

function current() {
  return queue.find((r) => r.id === currentId) || null;
}

function render() {
  if (!current()) { currentId = queue.length ? queue[0].id : null; shownAt = performance.now(); }
  const call = current();
  $("empty").classList.toggle("hidden", !!call);
  $("call").classList.toggle("hidden", !call);
  $("actions").classList.toggle("hidden", !call);
  $("deny-all").classList.toggle("hidden", queue.length < 2);
  $("title").textContent = call ? "Approval needed" : "No pending approvals";
  $("subtitle").textContent = queue.length > 1 ? `${queue.indexOf(call) + 1} of ${queue.length} waiting` : (call ? "1 call waiting" : "");
  document.title = call ? `Airlock: Approval Needed (${queue.length})` : "Airlock: Approvals";
  renderQueue();
  if (call) renderCall(call);
  updateArming();
}

function renderQueue() {
  const nav = $("queue");
  fill(nav);
  nav.classList.toggle("hidden", queue.length < 2);
  for (const r of queue) {
    nav.appendChild(h("button", {
      class: r.id === currentId ? "current" : "",
      onclick: () => { if (currentId !== r.id) { currentId = r.id; shownAt = performance.now(); render(); } },
    }, `${r.client} · ${r.tool}`));
  }
}

function renderCall(r) {
  const el = $("call");
  fill(el, 
    h("dl", { class: "who" },
      h("dt", {}, "Client"), h("dd", {}, r.client + (r.client_version ? " " + r.client_version : ""), " ", h("span", { class: "muted small" }, "session " + String(r.session).slice(0, 8))),
      h("dt", {}, "Tool"), h("dd", {}, h("span", { class: "tool-name", id: "tool" }, r.tool)),
      h("dt", {}, "Workspace"), h("dd", {}, r.workspace || h("span", { class: "muted" }, "—")),
    ),
    h("div", { class: "reason" }, "Asked because: ", r.reason),
    r.secrets && r.secrets.length ? h("div", { class: "secrets", id: "secrets" },
      "Receives your secrets: ", ...r.secrets.map((n) => h("code", {}, n)),
      h("div", { class: "small" }, "An allowed command can do anything with them, even send them on in a form Airlock cannot recognise.")) : null,
    renderArgs(r),
    r.diff ? renderDiff(r.diff) : null,
    h("div", { class: "countdown" }, h("span", { id: "remaining" }), h("div", { class: "bar", id: "bar" }, h("div", { id: "bar-fill" }))),
    h("label", { class: "small muted", for: "rule" }, "Rule that “Always Allow” adds to your settings (edit before saving):"),
    h("div", { class: "rule" }, h("input", {
      type: "text", id: "rule", spellcheck: "false",
      value: ruleEdits[r.id] !== undefined ? ruleEdits[r.id] : r.suggested_rule,
      oninput: (e) => { ruleEdits[r.id] = e.target.value; },
    })),
  );
  tick();
}

function renderArgs(r) {
  const args = r.arguments && typeof r.arguments === "object" ? r.arguments : { value: r.arguments };
  const rows = [];
  for (const [key, value] of Object.entries(args)) {
    if (r.diff && (key === "content" || key === "edits")) {
      rows.push(h("div", { class: "arg" }, h("div", { class: "key" }, key), h("div", { class: "muted small" }, "shown as a diff below")));
      continue;
    }
    const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    const isCommand = key === "command" || key === "cmd";
    rows.push(h("div", { class: "arg" + (isCommand ? " command" : "") },
      h("div", { class: "key" }, key),
      h("div", {},
        h("pre", { class: "value", dataset: { key } }, visible(text)),
        hasInvisible(text) ? h("div", { class: "warnline" }, "⚠ contains invisible or direction-changing characters (marked)") : null,
      )));
  }
  if (!rows.length) rows.push(h("div", { class: "arg" }, h("div", { class: "key" }, "arguments"), h("div", { class: "muted" }, "none")));
  return h("div", { class: "args", id: "args" }, rows);
}

function renderDiff(diff) {
  const lines = String(diff.unified || "").split("\n");
  const pre = h("pre", {});
  for (const line of lines) {
    let cls = "line";
    if (line.startsWith("+++") || line.startsWith("---")) cls += " hunk";
    else if (line.startsWith("+")) cls += " add";
    else if (line.startsWith("-")) cls += " del";
    else if (line.startsWith("@@")) cls += " hunk";
    pre.appendChild(h("span", { class: cls }, visible(line || " ")));
  }
  return h("div", { class: "diff", id: "diff" },
    h("div", { class: "diff-head" }, h("span", { class: "mono" }, diff.path), " ", diff.new_file ? h("span", { class: "badge ok" }, "new file") : h("span", { class: "badge" }, "changed")),
    pre);
}

function armed() {
  const call = current();
  return !!call && focused && !sending.has(call.id) && performance.now() - shownAt >= ARM_MS;
}

function updateArming() {
  const call = current();
  const on = armed();
  for (const id of ["allow-once", "allow-session", "allow-always"]) $(id).disabled = !on;
  $("deny").disabled = !call || sending.has(call && call.id);
  const hint = $("arm-hint");
  if (!call) hint.textContent = "";
  else if (sending.has(call.id)) hint.textContent = "Sending your decision…";
  else if (!focused) hint.textContent = "Click this window to enable the Allow buttons.";
  else if (!on) hint.textContent = "Read the call; the Allow buttons enable in a moment.";
  else hint.textContent = "Enter: Allow Once · Esc: Deny";
}

function tick() {
  const call = current();
  if (call) {
    const total = Math.max(1, call.expires_at - (call._seen || (call._seen = Date.now())));
    const left = Math.max(0, call.expires_at - Date.now());
    const secs = Math.ceil(left / 1000);
    const rem = $("remaining");
    if (rem) rem.textContent = left > 0 ? `Denied automatically in ${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}` : "Timed out: denied";
    const bar = $("bar");
    if (bar) {
      bar.classList.toggle("low", secs <= 10);
      $("bar-fill").style.width = Math.min(100, (left / total) * 100) + "%";
    }
  }
  updateArming();
}

async function decide(decision, id) {
  const call = id ? queue.find((r) => r.id === id) : current();
  if (!call || sending.has(call.id)) return;
  if (decision !== "deny" && !armed()) return;
  const args = { id: call.id, decision };
  if (decision === "allow_always") {
    const rule = ($("rule").value || "").trim();
    if (!rule) { Airlock.toast("The rule is empty", true); return; }
    args.rule = rule;
  }
  sending.add(call.id);
  updateArming();
  try {
    await invoke("decide", args);
  } catch (e) {
    sending.delete(call.id);
    Airlock.toast(String(e), true);
    updateArming();
  }
}

$("allow-once").addEventListener("click", () => decide("allow_once"));
$("allow-session").addEventListener("click", () => decide("allow_session"));
$("allow-always").addEventListener("click", () => decide("allow_always"));
$("deny").addEventListener("click", () => decide("deny"));
$("deny-all").addEventListener("click", () => { for (const r of [...queue]) decide("deny", r.id); });

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") { e.preventDefault(); decide("deny"); }
  else if (e.key === "Enter" && e.target.id !== "rule" && e.target.tagName !== "BUTTON") {
    e.preventDefault();
    decide("allow_once");
  }
});

init().catch((e) => Airlock.toast(String(e), true));
