// Shared by every window: talking to the app's Rust side, building DOM safely (text from the
// engine and the model is never parsed as HTML), and making invisible characters visible.
"use strict";

const Airlock = (() => {
  const T = window.__TAURI__;

  function invoke(cmd, args) {
    return T.core.invoke(cmd, args || {});
  }

  /** A request to the engine (see airlock-control `Request`); resolves with its reply. */
  function request(method, params) {
    return invoke("request", { request: Object.assign({ method }, params || {}) });
  }

  /** Engine messages (`engine`) and supervisor state (`supervisor`). */
  function on(event, cb) {
    return T.event.listen(event, (e) => cb(e.payload));
  }

  /** h("div", {class: "x", onclick: fn}, "text", child, [children]) */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "value") el.value = v;
      else if (k === "checked") el.checked = !!v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    append(el, children);
    return el;
  }

  /** Replaces `el`'s children (null / false children are skipped, arrays flattened). */
  function fill(el, ...children) {
    el.replaceChildren();
    return append(el, children);
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const NAMES = {
    0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x09: "TAB", 0x0b: "VT", 0x0c: "FF", 0x0d: "CR", 0x1b: "ESC", 0x7f: "DEL",
    0x200b: "ZWSP", 0x200c: "ZWNJ", 0x200d: "ZWJ", 0x200e: "LRM", 0x200f: "RLM", 0x061c: "ALM",
    0x202a: "LRE", 0x202b: "RLE", 0x202c: "PDF", 0x202d: "LRO", 0x202e: "RLO",
    0x2066: "LRI", 0x2067: "RLI", 0x2068: "FSI", 0x2069: "PDI", 0x2060: "WJ", 0xfeff: "BOM", 0x00ad: "SHY",
  };

  /** Is `cp` a character a person cannot see (control, bidi, zero-width)? Newlines stay. */
  function invisible(cp) {
    if (cp === 0x0a) return false;
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp in NAMES ||
      (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || (cp >= 0xfff9 && cp <= 0xfffb) ||
      (cp >= 0xe0000 && cp <= 0xe007f);
  }

  /** Text as nodes, with every invisible character shown as a marked badge like ⟨RLO⟩. */
  function visible(text) {
    const frag = document.createDocumentFragment();
    let run = "";
    for (const ch of String(text)) {
      const cp = ch.codePointAt(0);
      if (!invisible(cp)) { run += ch; continue; }
      if (run) { frag.appendChild(document.createTextNode(run)); run = ""; }
      const name = NAMES[cp] || "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
      frag.appendChild(h("span", { class: "ctrl", title: "invisible character U+" + cp.toString(16).toUpperCase().padStart(4, "0") }, name));
    }
    if (run) frag.appendChild(document.createTextNode(run));
    return frag;
  }

  function hasInvisible(text) {
    for (const ch of String(text)) if (invisible(ch.codePointAt(0))) return true;
    return false;
  }

  function fmtTime(ms) {
    if (!ms) return "";
    const d = new Date(ms);
    const today = new Date();
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    if (d.toDateString() === today.toDateString()) return time;
    return d.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" }) + " " + time;
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms < 1000) return ms + " ms";
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  }

  let toastTimer = null;
  function toast(message, bad) {
    let el = document.getElementById("toast");
    if (!el) { el = h("div", { id: "toast", class: "toast", role: "status" }); document.body.appendChild(el); }
    el.textContent = message;
    el.className = "toast" + (bad ? " bad" : "");
    el.classList.remove("hidden");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.add("hidden"), bad ? 6000 : 2500);
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const ta = h("textarea", { style: "position:fixed;opacity:0" });
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      document.execCommand("copy");
      ta.remove();
    }
    toast("Copied");
  }

  /** One line about the engine, for headers and the settings window. */
  function engineLine(snap) {
    const e = snap.engine || {};
    switch (e.state) {
      case "running": return { text: "Engine running" + (snap.engine_version ? " (v" + snap.engine_version + ")" : ""), kind: "ok" };
      case "starting": return { text: "Starting the engine…", kind: "warn" };
      case "restarting": return { text: "The engine stopped (" + e.message + "); restarting…", kind: "warn" };
      case "failed": return { text: e.message, kind: "bad" };
      case "stopping": return { text: "Quitting…", kind: "warn" };
      default: return { text: "Waiting for the engine…", kind: "warn" };
    }
  }

  function dockerLine(status) {
    if (!status) return { text: "unknown", kind: "warn" };
    const d = status.docker || {};
    switch (d.state) {
      case "ready": return { text: "Docker " + d.version + " ready", kind: "ok" };
      case "unreachable": return { text: "Docker unreachable: " + d.message, kind: "bad" };
      case "disabled": return { text: "Docker Runtime is off: every call is refused", kind: "warn" };
      default: return { text: "checking Docker…", kind: "warn" };
    }
  }

  return { invoke, request, on, h, append, fill, visible, hasInvisible, fmtTime, fmtDuration, toast, copy, engineLine, dockerLine };
})();
