// Settings: every change goes to the engine (the settings file's only writer), which answers with
// the settings it now uses, or the reason it refused the change.
"use strict";

const { h, fill, invoke, request, on, toast, copy } = Airlock;
const $ = (id) => document.getElementById(id);

let snap = { engine: {}, status: null, settings: null, pending: [] };
let awaiting = null;        // a change sent to the engine: { what, onOk }
const dirty = new Set();    // forms the user is editing: engine updates don't overwrite them

function settings() {
  return snap.settings && snap.settings.settings ? JSON.parse(JSON.stringify(snap.settings.settings)) : null;
}

// ---- sections ----

function showSection(name) {
  const known = ["runtime", "workspaces", "approvals", "secrets", "clients"];
  if (!known.includes(name)) name = "runtime";
  for (const s of known) $("page-" + s).classList.toggle("hidden", s !== name);
  for (const a of document.querySelectorAll(".side a")) a.classList.toggle("active", a.dataset.section === name);
  if (name === "approvals") loadGrants();
  if (name === "secrets") loadSecrets();
  if (name === "clients") loadClients();
}
window.addEventListener("hashchange", () => showSection(location.hash.slice(1)));

// ---- sending changes ----

async function send(what, newSettings, onOk) {
  awaiting = { what, onOk };
  try {
    await invoke("update_settings", { settings: newSettings });
  } catch (e) {
    awaiting = null;
    toast(String(e), true);
  }
}

function onSettings(msg) {
  snap.settings = { path: msg.path, settings: msg.settings, error: msg.error || null, notes: msg.notes || [], warnings: msg.warnings || [] };
  const err = $("settings-error");
  err.classList.toggle("hidden", !msg.error);
  err.textContent = msg.error ? "Not applied: " + msg.error : "";
  if (awaiting) {
    const a = awaiting;
    awaiting = null;
    if (msg.error) toast(a.what + " failed: " + msg.error, true);
    else { toast(a.what); if (a.onOk) a.onOk(); }
  }
  renderAll();
}

// The engine decides what to warn about (a read-write home folder); this only shows it.
function renderWarnings() {
  const warnings = (snap.settings && snap.settings.warnings) || [];
  const box = $("settings-warnings");
  box.classList.toggle("hidden", !warnings.length);
  fill(box, ...warnings.map((w) => h("div", {}, w)));
}

// ---- runtime ----

function renderRuntime() {
  const s = snap.settings && snap.settings.settings;
  const engine = Airlock.engineLine(snap);
  const docker = Airlock.dockerLine(snap.status);
  const failed = snap.engine && snap.engine.state === "failed";
  fill($("engine-line"), failed
    ? h("div", { class: "engine-failed" },
        h("div", { class: "banner bad small" }, engine.text),
        h("button", { class: "small-btn", id: "restart-engine", onclick: () => invoke("restart_engine").catch((e) => toast(String(e), true)) }, "Restart Engine"))
    : h("span", { class: "badge " + engine.kind }, engine.text));
  fill($("docker-line"), snap.status ? h("span", { class: "badge " + docker.kind }, docker.text) : h("span", { class: "muted" }, "—"));
  $("side-engine").textContent = failed ? "Engine not running" : engine.text;
  const st = snap.status;
  $("sandboxes").textContent = st ? `${st.sandboxes} running` : "—";
  $("listen").textContent = (st && st.listen) || "—";
  $("settings-path").textContent = (snap.settings && snap.settings.path) || "—";
  const toggle = $("runtime-toggle");
  toggle.disabled = !s;
  if (s) toggle.checked = !!s.runtime.enabled;
  $("runtime-note").textContent = !s ? "Waiting for the engine…" :
    s.runtime.enabled ? "On: every tool call runs inside a Docker sandbox." : "Off: sandboxes are stopped and every call is refused.";
  if (s && !dirty.has("runtime-form")) {
    const r = s.runtime;
    $("rt-image").value = r.image;
    $("rt-memory").value = r.memory_mb;
    $("rt-cpus").value = r.cpus;
    $("rt-pids").value = r.pids;
    $("rt-network").value = r.network;
    $("rt-timeout").value = r.command_timeout_secs;
    $("rt-idle").value = r.idle_timeout_secs;
    $("rt-installers").checked = !!r.installers;
  }
}

$("runtime-toggle").addEventListener("change", async (e) => {
  const enabled = e.target.checked;
  e.target.disabled = true;
  try {
    await invoke("set_runtime", { enabled });
  } catch (err) {
    toast(String(err), true);
    e.target.checked = !enabled;
    e.target.disabled = false;
  }
});

$("stop-all").addEventListener("click", async () => {
  try { await invoke("stop_all"); toast("Stopping all sandboxes"); } catch (e) { toast(String(e), true); }
});

$("runtime-form").addEventListener("input", () => dirty.add("runtime-form"));
$("runtime-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const s = settings();
  if (!s) return;
  Object.assign(s.runtime, {
    image: $("rt-image").value.trim(),
    memory_mb: Number($("rt-memory").value),
    cpus: Number($("rt-cpus").value),
    pids: Number($("rt-pids").value),
    network: $("rt-network").value,
    command_timeout_secs: Number($("rt-timeout").value),
    idle_timeout_secs: Number($("rt-idle").value),
    installers: $("rt-installers").checked,
  });
  send("Runtime saved", s, () => dirty.delete("runtime-form"));
});

// ---- workspaces ----

function workspaceName(path) {
  const base = path.replace(/\/+$/, "").split("/").pop() || "";
  let name = base.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^\.+/, "").slice(0, 56);
  return name || "folder";
}

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

function renderWorkspaces() {
  const s = snap.settings && snap.settings.settings;
  const list = $("ws-list");
  if (!s) { fill(list, h("p", { class: "muted" }, "Waiting for the engine…")); return; }
  const statusOf = (name) => ((snap.status && snap.status.workspaces) || []).find((w) => w.name === name);
  if (!s.workspaces.length) {
    fill(list, h("div", { class: "card muted" }, "No workspaces yet. Add a folder below so assistants can work in it."));
    return;
  }
  if (dirty.has("ws-list")) return;
  fill(list, ...s.workspaces.map((w, i) => {
    const st = statusOf(w.name);
    const available = st ? st.available : true;
    const external = st ? st.external : false;
    const hide = h("textarea", { rows: 3, spellcheck: "false", oninput: () => dirty.add("ws-list") }, (w.hide || []).join("\n"));
    const protect = h("textarea", { rows: 3, spellcheck: "false", oninput: () => dirty.add("ws-list") }, (w.protect || []).join("\n"));
    const secrets = h("input", { type: "text", spellcheck: "false", value: (w.secrets || []).join(", "), oninput: () => dirty.add("ws-list") });
    const access = h("select", { "aria-label": "Access for " + w.name, class: "ws-access", onchange: (e) => {
      const next = settings(); next.workspaces[i].access = e.target.value;
      send(`${w.name} is now ${e.target.value === "ro" ? "read-only" : "read-write"}`, next);
    } }, h("option", { value: "rw" }, "Read-write"), h("option", { value: "ro" }, "Read-only"));
    access.value = w.access;
    return h("div", { class: "card ws" + (available ? "" : " unavailable"), dataset: { name: w.name } },
      h("div", {},
        h("div", { class: "row" },
          h("span", { class: "name" }, w.name),
          h("span", { class: "badge" + (w.access === "rw" ? " warn" : "") }, w.access === "ro" ? "read-only" : "read-write"),
          external ? h("span", { class: "badge" }, "external drive") : null,
          available ? null : h("span", { class: "badge bad" }, external ? "unavailable: drive not connected" : "unavailable: folder missing"),
          w.enabled === false ? h("span", { class: "badge" }, "disabled") : null),
        h("div", { class: "path" }, w.path, "  →  /workspaces/" + w.name)),
      h("div", { class: "controls" },
        access,
        h("button", { class: "danger", onclick: () => {
          const next = settings(); next.workspaces.splice(i, 1);
          send(`Removed ${w.name}`, next);
        } }, "Remove")),
      h("details", {},
        h("summary", {}, `Hidden (${(w.hide || []).length}), protected (${(w.protect || []).length}), secrets (${(w.secrets || []).length})`),
        h("span", { class: "label" }, "Hidden inside the sandbox (one pattern per line)"), hide,
        h("span", { class: "label" }, "Read-only inside a read-write mount"), protect,
        h("span", { class: "label" }, "Secrets given to this workspace as environment variables (names, comma-separated)"), secrets,
        h("div", { class: "row form-actions" }, h("div", { class: "spacer" }), h("button", { class: "primary", onclick: () => {
          const next = settings();
          Object.assign(next.workspaces[i], {
            hide: lines(hide.value), protect: lines(protect.value),
            secrets: secrets.value.split(",").map((x) => x.trim()).filter(Boolean),
          });
          send(`Saved ${w.name}`, next, () => dirty.delete("ws-list"));
        } }, "Save"))));
  }));
}

$("ws-path").addEventListener("input", () => {
  $("ws-name").placeholder = $("ws-path").value.trim() ? workspaceName($("ws-path").value.trim()) : "from the folder";
});
$("ws-choose").addEventListener("click", async () => {
  try {
    const path = await invoke("pick_folder");
    if (path) { $("ws-path").value = path; $("ws-path").dispatchEvent(new Event("input")); }
  } catch (e) { toast("No folder picker here; type the path instead (" + e + ")", true); }
});
$("ws-add").addEventListener("submit", (e) => {
  e.preventDefault();
  const s = settings();
  if (!s) return;
  const path = $("ws-path").value.trim();
  if (!path.startsWith("/") && !/^[A-Za-z]:\\/.test(path)) { toast("Type the folder's full path, like /home/you/project", true); return; }
  const name = $("ws-name").value.trim() || workspaceName(path);
  if (s.workspaces.some((w) => w.name === name)) { toast(`A workspace named ${name} exists; pick another name`, true); return; }
  s.workspaces.push({ name, path, access: $("ws-access").value, enabled: true });
  send(`Added ${name}`, s, () => { $("ws-path").value = ""; $("ws-name").value = ""; $("ws-name").placeholder = "from the folder"; });
});

// ---- approvals ----

function renderRules() {
  renderRuleNotes();
  const s = snap.settings && snap.settings.settings;
  if (!s || dirty.has("rules-form")) return;
  $("rules-allow").value = s.approval.allow.join("\n");
  $("rules-ask").value = s.approval.ask.join("\n");
  $("rules-deny").value = s.approval.deny.join("\n");
  $("rules-always").value = (s.approval.always || []).join("\n");
  $("approval-timeout").value = s.approval.timeout_secs;
}

// What a saved rule does not do (from the engine), with the change that would do it.
function renderRuleNotes() {
  const notes = (snap.settings && snap.settings.notes) || [];
  const box = $("rule-notes");
  fill(box, ...notes.map((n) => {
    const fix = n.fix && n.fix.kind === "hide"
      ? h("button", { class: "link", type: "button", onclick: () => hideAlso(n.fix) }, `Also hide ${n.fix.pattern}`)
      : null;
    return h("p", { class: "note small" }, n.message, " ", fix);
  }));
  box.classList.toggle("hidden", notes.length === 0);
}

function hideAlso(fix) {
  const s = settings();
  const ws = s && s.workspaces.find((w) => w.name === fix.workspace);
  if (!ws) return;
  ws.hide = [...(ws.hide || []), fix.pattern];
  send(`${fix.pattern} hidden in ${fix.workspace}`, s);
}
$("rules-form").addEventListener("input", () => dirty.add("rules-form"));
$("rules-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const s = settings();
  if (!s) return;
  s.approval.allow = lines($("rules-allow").value);
  s.approval.ask = lines($("rules-ask").value);
  s.approval.deny = lines($("rules-deny").value);
  if ("always" in s.approval) s.approval.always = lines($("rules-always").value);
  s.approval.timeout_secs = Number($("approval-timeout").value);
  send("Rules saved", s, () => { dirty.delete("rules-form"); loadGrants(); });
});

async function loadGrants() {
  const box = $("grants");
  try {
    const r = await request("grants_list");
    const grants = r.grants || [];
    if (!grants.length) { fill(box, h("p", { class: "muted" }, "Nothing remembered. “Allow for Session” and “Always Allow” answers show up here.")); return; }
    fill(box, ...grants.map((g) => h("div", { class: "list-row" },
      h("span", { class: "badge" + (g.scope === "always" ? " warn" : "") }, g.scope === "always" ? "always" : "this session"),
      h("span", { class: "mono grow" }, g.rule),
      g.session ? h("span", { class: "muted small mono" }, String(g.session).slice(0, 8)) : null,
      h("button", { class: "danger small-btn", onclick: async () => {
        try { await request("grant_revoke", { id: g.id }); toast("Revoked"); loadGrants(); } catch (e) { toast(String(e), true); }
      } }, "Revoke"))));
  } catch (e) { fill(box, h("p", { class: "muted" }, "Cannot list grants: " + e)); }
}
$("grants-reload").addEventListener("click", loadGrants);

// ---- secrets ----

async function loadSecrets() {
  const box = $("secret-list");
  try {
    const r = await request("secrets_list");
    const names = r.names || [];
    if (!names.length) { fill(box, h("p", { class: "muted" }, "No secrets yet.")); return; }
    fill(box, ...names.map((name) => h("div", { class: "list-row" },
      h("span", { class: "mono grow" }, name), h("span", { class: "muted small" }, "••••••••"),
      h("button", { class: "danger small-btn", onclick: async () => {
        try { await request("secret_remove", { name }); toast(`Removed ${name}`); loadSecrets(); } catch (e) { toast(String(e), true); }
      } }, "Remove"))));
  } catch (e) { fill(box, h("p", { class: "muted" }, "Cannot list secrets: " + e)); }
}
$("secret-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("secret-name").value.trim();
  const value = $("secret-value").value;
  if (!name || !value) { toast("Give the secret a name and a value", true); return; }
  try {
    await request("secret_set", { name, value });
    $("secret-value").value = "";
    $("secret-name").value = "";
    toast(`Saved ${name}`);
    loadSecrets();
  } catch (err) { toast(String(err), true); }
});

// ---- clients ----

async function loadClients() {
  const box = $("client-list");
  try {
    const r = await request("clients_config");
    fill(box, 
      h("div", { class: "card" }, h("div", { class: "field" }, h("span", {}, "Endpoint"), h("span", { class: "row" }, h("code", {}, r.url), h("button", { class: "small-btn", onclick: () => copy(r.url) }, "Copy")))),
      ...(r.clients || []).map((c) => h("div", { class: "card client" },
        h("div", { class: "row" }, h("h2", {}, c.title), h("div", { class: "spacer" }),
          h("button", { class: "small-btn", onclick: () => copy(c.config) }, "Copy"),
          c.config_file ? h("button", { class: "primary small-btn", onclick: async () => {
            try { const res = await request("client_install", { client: c.id }); toast("Installed into " + res.path); } catch (e) { toast(String(e), true); }
          } }, "Install") : null),
        c.config_file ? h("div", { class: "muted small mono" }, c.config_file) : null,
        h("pre", {}, c.config),
        c.command ? h("div", { class: "row small" }, h("span", { class: "muted" }, "Or run:"), h("code", {}, c.command), h("button", { class: "link", onclick: () => copy(c.command) }, "Copy")) : null)));
  } catch (e) { fill(box, h("p", { class: "muted" }, "Cannot read the client configuration: " + e)); }
}

// ---- engine events ----

function renderAll() {
  renderWarnings();
  renderRuntime();
  renderWorkspaces();
  renderRules();
}

async function init() {
  snap = await invoke("snapshot");
  if (snap.settings && snap.settings.error) onSettings(snap.settings); else renderAll();
  showSection(location.hash.slice(1) || "runtime");
  on("engine", (msg) => {
    if (msg.type === "settings") onSettings(msg);
    else if (msg.type === "status") { snap.status = msg; delete snap.status.type; renderRuntime(); if (!dirty.has("ws-list")) renderWorkspaces(); }
    else if (msg.type === "approval_resolved" && $("page-approvals") && !$("page-approvals").classList.contains("hidden")) loadGrants();
    else if (msg.type === "hello") { snap.engine = { state: "running" }; snap.engine_version = msg.engine_version; renderRuntime(); }
  });
  on("supervisor", (p) => { if (p.engine) { snap.engine = p.engine; renderRuntime(); } });
  on("section", (name) => { location.hash = "#" + name; showSection(name); });
}

init().catch((e) => toast(String(e), true));
