// Shared code of the OBS overlays. The token comes from the URL *fragment* (#token=...), which the
// browser never sends to the server, and is removed from the address at once. All text is inserted
// with textContent; text from outside (chat, a co-host's words) also sits in a bidi-isolated element with
// its direction controls removed, so no string can reorder or restyle the rest of the overlay.
"use strict";
(() => {
  const kind = document.body.dataset.overlay;
  const TOPICS = { captions: ["caption", "listen"], chat: ["chat"], status: ["emotion", "links"] };
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  history.replaceState(null, "", location.pathname + location.search);
  const linger = Number(params.get("linger") || 2.5) * 1000;
  const maxLines = Number(params.get("lines") || 8);
  const cohostMs = Number(params.get("cohost") || 5) * 1000;
  const showLinks = params.get("links") !== "0";
  const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  const MAX_TEXT = 300;

  function plain(text) {
    const s = String(text === undefined || text === null ? "" : text).replace(BIDI_CONTROLS, "");
    return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT - 1) + "…" : s;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function notice(text) { const n = document.getElementById("notice"); n.textContent = text; n.hidden = !text; }

  // ----- captions: karaoke, word by word as the timeline plays them -----
  let hideTimer = null;
  function caption(msg) {
    const box = document.getElementById("captions");
    if (!msg.speaking) {  // speech ended: leave the line up a moment, then fade
      clearTimeout(hideTimer);
      hideTimer = setTimeout(() => box.classList.add("faded"), linger);
      return;
    }
    if (msg.speech_id === null) return;  // a pause between words: keep the line as it is
    clearTimeout(hideTimer);
    clear(box);
    box.lang = msg.language || "";
    const cjk = msg.language === "zh" || msg.language === "ja";
    // the line's own spacing (a mixed "Hello everyone 大家好" keeps its English spaces); else by language
    const spaced = (i) => (msg.spaces && msg.spaces.length === msg.words.length) ? msg.spaces[i] : (i > 0 && !cjk);
    msg.words.forEach((word, i) => {
      if (spaced(i)) box.appendChild(document.createTextNode(" "));
      box.appendChild(el("span", word, "w " + (i < msg.index ? "done" : i === msg.index ? "now" : "")));
    });
    box.classList.remove("faded");
  }

  // ----- a co-host's words: moderated final transcripts, a few seconds each, newest last -----
  function cohostSaid(msg) {
    if (!msg.accepted || !msg.text) return;
    const box = document.getElementById("cohost");
    if (!box) return;
    const line = el("div", null, "said");
    line.appendChild(el("bdi", plain(msg.speaker), "speaker"));
    const text = el("bdi", plain(msg.text), "text");
    text.lang = msg.language || "";
    line.appendChild(text);
    box.appendChild(line);
    while (box.children.length > 2) box.removeChild(box.firstChild);
    setTimeout(() => {
      line.classList.add("faded");
      setTimeout(() => line.remove(), 500);
    }, cohostMs);
  }

  // ----- chat box -----
  function chatLine(item) {
    if (!item.accepted || item.platform === "voice") return;  // a co-host's words are not chat
    const box = document.getElementById("chatbox");
    const line = el("div", null, "line");
    line.appendChild(el("bdi", plain(item.user), "user"));
    line.appendChild(el("bdi", plain(item.text), "text"));
    if (item.paid) line.appendChild(el("span", item.paid + " " + (item.currency || ""), "paid"));
    box.appendChild(line);
    while (box.children.length > maxLines) box.removeChild(box.firstChild);
  }

  // ----- status badge -----
  function badge(msg) {
    const node = document.getElementById("badge");
    node.dataset.emotion = msg.dominant || "neutral";
    node.dataset.speaking = String(msg.speaking);
    document.getElementById("badge-text").textContent = msg.paused ? "paused" : (msg.dominant || "calm");
  }

  // ----- status: every network output, with how long it has been off air -----
  function links(msg) {
    const box = document.getElementById("links");
    if (!box || !showLinks) return;
    clear(box);
    for (const k of msg.links) {
      const row = el("div", null, "link");
      row.dataset.state = k.state;
      row.appendChild(el("span", null, "dot"));
      let text = plain(k.name) + " " + plain(k.state);
      if (k.state !== "live" && k.state !== "closed") text += " · off air " + k.off_air_s + " s";
      text += " · " + k.reconnects + " reconnects · " + k.dropped + " dropped";
      row.appendChild(el("span", text, "text"));
      box.appendChild(row);
    }
  }

  const handlers = {
    caption, emotion: badge, links,
    voice_decided: cohostSaid,
    chat: (msg) => chatLine(msg.item),
    chat_history: (msg) => { if (kind === "chat") msg.items.forEach(chatLine); },
    hello: () => notice(""),
    error: (msg) => notice("overlay: " + msg.detail),
  };

  let retry = 500;
  function connect() {
    const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token, topics: TOPICS[kind] || [] }));
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      const msg = JSON.parse(event.data);
      if (handlers[msg.type]) { handlers[msg.type](msg); retry = 500; }
    };
    socket.onclose = (event) => {
      if (event.code === 4401) { notice("overlay: token rejected"); return; }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  if (!token) notice("overlay: add #token=<viewer token> to this page's URL");
  else connect();
})();
