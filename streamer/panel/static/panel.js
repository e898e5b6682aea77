// stagecast moderator panel. The token lives in this closure only (no cookies, no storage, no URL);
// every piece of text from the show is inserted with textContent, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  let token = null;
  let me = null;
  let ws = null;
  let retryMs = 500;
  let previewUrl = null;
  let wordsDirty = false;
  const ROLE_LEVEL = { viewer: 0, cohost: 1, mod: 2, admin: 3 };
  const can = (role) => me !== null && (ROLE_LEVEL[me.role] || 0) >= ROLE_LEVEL[role];
  let listen = { enabled: true, muted: [], inputs: {} };  // name -> {speaker, state, streaming, browser}

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  // direction overrides never come from speech; removed so no transcript can show reordered words
  const plain = (text) => String(text).replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
  function fmtTime(ts) { return new Date(ts * 1000).toLocaleTimeString(); }

  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: "Bearer " + token }, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const response = await fetch("/api/" + path, opts);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data };
  }

  function showResult(text, ok) {
    const node = $("result");
    node.textContent = text;
    node.className = "small " + (ok ? "status-ok" : "status-bad");
  }

  async function act(method, path, body, describe) {
    const { status, data } = await api(method, path, body);
    if (status === 200 && data && data.ok) {
      showResult(describe ? describe(data.result) : path + ": done", true);
    } else if (status === 401) {
      logout("session expired or token revoked");
    } else {
      showResult(path + " failed (" + status + "): " + ((data && data.detail) || "error"), false);
    }
    return { status, data };
  }

  // ----- login -------------------------------------------------------------------------------------
  async function login(candidate) {
    token = candidate;
    const { status, data } = await api("GET", "whoami");
    if (status !== 200) {
      token = null;
      $("login-error").textContent = status === 401 ? "That token is not valid." : "Login failed (" + status + ").";
      return;
    }
    me = data;
    $("login-error").textContent = "";
    $("login").hidden = true;
    $("app").hidden = false;
    $("who").textContent = me.name + " (" + me.role + ")";
    for (const node of document.querySelectorAll(".mod-only")) node.hidden = !can("mod");
    for (const node of document.querySelectorAll(".admin-only")) node.hidden = !can("admin");
    if (can("mod")) loadAudit();
    connect();
  }

  function logout(reason) {
    token = null;
    me = null;
    listenDrawn = "";
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = reason || "";
  }

  // ----- live socket ----------------------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws");
    socket.binaryType = "blob";
    ws = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "auth", token,
        topics: ["status", "caption", "emotion", "chat", "audit", "preview", "listen"] }));
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") { showPreview(event.data); return; }
      const msg = JSON.parse(event.data);
      handlers[msg.type] && handlers[msg.type](msg);
    };
    socket.onclose = (event) => {
      setConn("offline", "bad");
      if (ws !== socket || token === null) return;
      if (event.code === 4401) { logout("token rejected by the live feed"); return; }
      setTimeout(() => { if (token !== null) connect(); }, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  function setConn(text, kind) { const n = $("conn"); n.textContent = text; n.className = "pill " + kind; }

  function showPreview(blob) {
    const url = URL.createObjectURL(blob);
    $("preview").src = url;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = url;
  }

  const handlers = {
    hello: () => { retryMs = 500; setConn("live", "ok"); },
    error: (msg) => showResult("live feed: " + msg.detail, false),
    status: renderStatus,
    caption: renderCaption,
    emotion: renderEmotion,
    chat: (msg) => addChat(msg.item, true),
    chat_history: (msg) => { clear($("chat")); for (const item of msg.items) addChat(item, true); },
    audit: (msg) => addAudit(msg.entry, true),
    heard: addHeard,
    listening: (msg) => { inputInfo(msg.input, msg.speaker).state = msg.state; renderListen(); },
    listen_switch: (msg) => { listen.enabled = msg.enabled; listen.muted = msg.muted; renderListen(); },
    barge_in: addBargeIn,
    voice_decided: markDecided,
  };

  // ----- rendering ---------------------------------------------------------------------------------------
  let caption = { speech_id: null, words: [], index: null, language: null };

  function renderCaption(msg) {
    const box = $("speech");
    if (msg.speaking && msg.speech_id === null) return;  // a pause between words: keep the line
    if (msg.speech_id !== null) caption = msg;
    clear(box);
    if (!msg.speaking) { box.dataset.state = "idle"; return; }
    box.dataset.state = "speaking";
    box.lang = caption.language || "";
    const cjk = caption.language === "zh" || caption.language === "ja";
    caption.words.forEach((word, i) => {
      const state = caption.index === null ? "todo" : i < caption.index ? "done" : i === caption.index ? "now" : "todo";
      box.appendChild(el("span", word, "w " + state));
      if (!cjk) box.appendChild(document.createTextNode(" "));
    });
  }

  function renderEmotion(msg) {
    const box = $("emotions");
    clear(box);
    for (const [name, value] of Object.entries(msg.values)) {
      box.appendChild(el("span", name + " " + value.toFixed(2)));
      const bar = el("div", null, "bar");
      const fill = el("div");
      fill.style.width = Math.round(value * 100) + "%";
      bar.appendChild(fill);
      box.appendChild(bar);
    }
  }

  // ----- listening -----------------------------------------------------------------------------------------
  const heardLines = new Map();  // "input#utterance" -> li (a partial's line, replaced by its final)

  function inputInfo(name, speaker) {
    const info = listen.inputs[name] || (listen.inputs[name] = { speaker: speaker || name, state: "idle", streaming: null });
    if (speaker) info.speaker = speaker;
    return info;
  }

  let listenDrawn = "";

  function renderListen() {
    const drawn = JSON.stringify(listen);
    if (drawn === listenDrawn) return;  // redraw only on change: a button must not vanish under a click
    listenDrawn = drawn;
    const toggle = $("listen-toggle");
    toggle.textContent = listen.enabled ? "Switch listening off" : "Switch listening on";
    toggle.dataset.enabled = String(listen.enabled);
    $("listen-summary").textContent = (listen.enabled ? "Listening is on" : "Listening is OFF") +
      (listen.muted.length ? " · muted: " + listen.muted.join(", ") : "");
    const body = $("listen-inputs");
    clear(body);
    const names = Object.keys(listen.inputs).sort();
    for (const name of names) {
      const info = listen.inputs[name];
      const muted = listen.muted.indexOf(name) >= 0;
      const row = el("tr");
      row.dataset.input = name;
      row.appendChild(el("td", name));
      row.appendChild(el("td", info.speaker, "speaker"));
      const state = el("td");
      state.appendChild(el("span", muted ? "muted" : info.state, "pill state " + (muted ? "bad" : info.state === "listening" ? "ok" : info.state === "thinking" ? "warn" : "")));
      row.appendChild(state);
      row.appendChild(el("td", info.streaming ? "page: " + info.streaming : (info.browser ? "no page" : "")));
      const cell = el("td");
      if (can("mod")) {
        const b = el("button", muted ? "Unmute" : "Mute", "mute");
        b.type = "button";
        b.addEventListener("click", () => act("POST", "mute", { input: name, muted: !muted },
          (r) => (r.muted ? "muted " : "unmuted ") + r.input));
        cell.appendChild(b);
      }
      row.appendChild(cell);
      body.appendChild(row);
    }
    if (!names.length) {
      const row = el("tr");
      const cell = el("td", "no inputs (listen.inputs in the config)", "small");
      cell.colSpan = 5;
      row.appendChild(cell);
      body.appendChild(row);
    }
  }

  function addListenLine(li) {
    const list = $("heard");
    list.prepend(li);
    while (list.children.length > 100) {
      const last = list.lastChild;
      for (const [key, node] of heardLines) if (node === last) heardLines.delete(key);
      list.removeChild(last);
    }
  }

  function addHeard(msg) {
    inputInfo(msg.input, msg.speaker);
    const key = msg.input + "#" + msg.utterance;
    let li = heardLines.get(key);
    if (!li) {
      li = el("li");
      li.dataset.input = msg.input;
      li.appendChild(el("span", msg.speaker, "user"));
      li.appendChild(el("span", "", "text"));
      heardLines.set(key, li);
      addListenLine(li);
    }
    li.className = msg.partial ? "partial" : "final";
    const text = li.querySelector(".text");
    text.textContent = plain(msg.text) || (msg.partial ? "…" : "(nothing recognised)");
    text.lang = msg.language || "";
    text.dir = "auto";
  }

  function addBargeIn(msg) {
    const li = el("li", null, "barge-in");
    li.appendChild(el("span", msg.speaker, "user"));
    li.appendChild(el("span", "cut in after " + Math.round(msg.latency_ms) + " ms" +
      (msg.heard && msg.heard.length ? " — viewers heard: " + msg.heard.join(" ") : ""), "text"));
    addListenLine(li);
  }

  function markDecided(msg) {
    if (msg.accepted) return;
    const lines = [...$("heard").children].filter((li) => li.dataset.input === msg.input && li.classList.contains("final"));
    const li = lines[0];
    if (li && !li.querySelector(".blocked")) li.appendChild(el("span", "[" + (msg.rule || "blocked") + "]", "blocked"));
  }

  function renderStatus(s) {
    $("paused-pill").hidden = !s.paused;
    if (s.listening) {
      listen.enabled = s.listening.enabled;
      listen.muted = s.listening.muted;
      for (const name of s.listening.inputs) {
        const d = s.listening.by_input[name];
        const info = inputInfo(name, d.speaker);
        info.state = d.state;
        info.streaming = d.streaming;
        info.browser = d.browser;
      }
      renderListen();
    }
    const q = $("queue");
    clear(q);
    for (const t of s.queue) {
      const row = el("tr");
      for (const v of [t.id, t.priority, t.user, t.text, t.waiting_s + " s"]) row.appendChild(el("td", v));
      q.appendChild(row);
    }
    const recent = $("recent");
    clear(recent);
    for (const t of s.recent_turns.slice().reverse()) recent.appendChild(el("li", t.id + " " + t.status + ": " + t.played_text));
    if (s.speech) {
      $("speech-meta").textContent = s.speech.id + " · " + s.speech.priority + " · " + s.speech.status + " · for " + s.speech.user;
    } else {
      $("speech-meta").textContent = "idle";
    }
    const h = $("health");
    clear(h);
    const rows = [
      ["mode", s.mode + " " + s.video.width + "x" + s.video.height + " @ " + s.video.fps],
      ["stream time", s.stream_s + " s (" + s.frames + " frames)"],
      ["late frames", s.late_frames],
      ["render errors", s.render_errors],
      ["frame ms", "animate " + s.frame_ms.animate + " · render " + s.frame_ms.render + " · submit " + s.frame_ms.submit],
      ["encoder ms", s.encoder.ms_median + " (queue " + s.encoder.queue + ", errors " + s.encoder.errors + ")"],
      ["outputs", s.sinks.map(sinkText).join(" · ") || "none"],
      ["chat sources", s.chat_sources.join(", ") || "none"],
      ["dropped turns", s.dropped_turns],
      ["panel", s.panel.clients + " clients, preview " + s.panel.preview_encode_ms + " ms"],
    ];
    for (const [k, v] of rows) { h.appendChild(el("dt", k)); h.appendChild(el("dd", v)); }
    $("preview-info").textContent = "frame " + s.frames;
    if (!wordsDirty && document.activeElement !== $("words")) $("words").value = s.banned_words.join("\n");
    const blocked = $("blocked");
    clear(blocked);
    for (const b of s.blocked_users) blocked.appendChild(el("li", b.kind + ": " + b.user + (b.until ? " until " + fmtTime(b.until) : "")));
  }

  // An output as viewers get it: a network link's state, how long it has been off air, its reconnects and drops.
  function sinkText(k) {
    let text = k.name + ": " + k.state;
    if (k.link && k.state !== "live" && k.state !== "closed") text += " " + Math.round(k.off_air_s) + " s";
    if (k.error) text += " (" + k.error + ")";
    if (k.link) text += ", " + k.reconnects + " reconnects, off air " + Math.round(k.off_air_total_s) + " s in all";
    if (k.dropped) text += ", " + k.dropped + " dropped";
    return text;
  }

  function addChat(item, prepend) {
    const list = $("chat");
    const li = el("li", null, item.accepted ? "accepted" : "rejected");
    li.appendChild(el("span", item.user, "user"));
    li.appendChild(el("span", item.text, "text"));
    if (!item.accepted) li.appendChild(el("span", "[" + (item.rule || "blocked") + "]", "blocked"));
    if (can("mod")) {
      const t = el("button", "timeout 10m");
      t.type = "button";
      t.addEventListener("click", () => act("POST", "timeout", { user: item.user_key, seconds: 600 },
        () => "timed out " + item.user_key));
      li.appendChild(t);
    }
    if (can("admin")) {
      const b = el("button", "ban");
      b.type = "button";
      b.addEventListener("click", () => act("POST", "ban", { user: item.user_key }, () => "banned " + item.user_key));
      li.appendChild(b);
    }
    if (prepend) list.prepend(li); else list.appendChild(li);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  }

  function addAudit(entry, prepend) {
    const body = $("audit");
    const row = el("tr");
    for (const v of [fmtTime(entry.ts), entry.actor + " (" + entry.role + ")", entry.action, entry.status, entry.result]) {
      row.appendChild(el("td", v));
    }
    row.dataset.seq = entry.seq;
    if (prepend) body.prepend(row); else body.appendChild(row);
    while (body.children.length > 300) body.removeChild(body.lastChild);
  }

  async function loadAudit() {
    const { status, data } = await api("GET", "audit?limit=100");
    if (status !== 200) return;
    clear($("audit"));
    for (const entry of data.entries) addAudit(entry, false);
  }

  // ----- controls -------------------------------------------------------------------------------------------
  function on(id, event, fn) { $(id).addEventListener(event, (e) => { e.preventDefault(); fn(e); }); }

  document.addEventListener("DOMContentLoaded", () => {
    on("login-form", "submit", () => {
      const input = $("token");
      const candidate = input.value.trim();
      input.value = "";  // the token must not linger in the DOM
      login(candidate);
    });
    on("logout", "click", () => logout(""));
    on("interrupt", "click", () => act("POST", "interrupt", undefined, (r) =>
      r.was_speaking ? "interrupted at frame " + r.cut_frame + " — heard: " + (r.heard.join(" ") || "(nothing)")
                     : "interrupt: nothing was playing"));
    on("skip", "click", () => act("POST", "skip", undefined, (r) => "skipped " + r.skipped));
    on("pause", "click", () => act("POST", "pause", undefined, () => "paused: the character stops taking turns"));
    on("resume", "click", () => act("POST", "resume", undefined, () => "resumed"));
    on("clear", "click", () => act("POST", "clear", undefined, (r) => "cleared " + r.dropped + " queued turns"));
    on("say-form", "submit", () => {
      const body = { text: $("say-text").value };
      if ($("say-lang").value) body.language = $("say-lang").value;
      if ($("say-emotion").value) body.emotion = { emotion: $("say-emotion").value, intensity: 0.8 };
      act("POST", "say", body, (r) => "say-now queued as " + r.turn + " (" + r.language + ")").then(({ status }) => {
        if (status === 200) $("say-text").value = "";
      });
    });
    on("emotion-form", "submit", () => act("POST", "emotion", {
      emotion: $("emo-name").value, intensity: Number($("emo-intensity").value), hold_s: Number($("emo-hold").value),
    }, (r) => r.emotion + " " + r.intensity + " for " + r.hold_s + " s from frame " + r.start_frame));
    $("words").addEventListener("input", () => { wordsDirty = true; });
    on("words-form", "submit", () => {
      const words = $("words").value.split("\n").map((w) => w.trim()).filter((w) => w);
      act("PUT", "banned-words", { words }, (r) => "banned words: " + r.banned_words.length).then(() => { wordsDirty = false; });
    });
    on("ban-form", "submit", () => act("POST", "ban", { user: $("ban-user").value }, (r) => "banned " + r.user +
      (r.matched.length ? " — matches " + r.matched.join(", ") : " — no viewer seen with that name yet; blocked when they write")));
    on("unban", "click", () => act("POST", "unban", { user: $("ban-user").value }, (r) => "unbanned " + r.user));
    on("reload", "click", () => act("POST", "reload", undefined, (r) => "reloaded: " + JSON.stringify(r.changed)));
    on("listen-toggle", "click", () => act("POST", "listening", { enabled: !listen.enabled },
      (r) => "listening " + (r.enabled ? "on" : "off")));
    on("stop", "click", () => { if (confirm("Stop the show for everyone?")) act("POST", "stop", undefined, () => "stopping"); });
  });
})();
