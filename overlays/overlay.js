// Shared code of the OBS overlays. The token comes from the URL *fragment* (#token=...), which the
// browser never sends to the server, and is removed from the address at once. All text is inserted
// with textContent.
"use strict";
(() => {
  const kind = document.body.dataset.overlay;
  const TOPICS = { captions: ["caption"], chat: ["chat"], status: ["emotion"] };
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  history.replaceState(null, "", location.pathname + location.search);
  const linger = Number(params.get("linger") || 2.5) * 1000;
  const maxLines = Number(params.get("lines") || 8);

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
    msg.words.forEach((word, i) => {
      box.appendChild(el("span", word, "w " + (i < msg.index ? "done" : i === msg.index ? "now" : "")));
      if (!cjk) box.appendChild(document.createTextNode(" "));
    });
    box.classList.remove("faded");
  }

  // ----- chat box -----
  function chatLine(item) {
    if (!item.accepted) return;
    const box = document.getElementById("chatbox");
    const line = el("div", null, "line");
    line.appendChild(el("span", item.user, "user"));
    line.appendChild(el("span", item.text, "text"));
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

  const handlers = {
    caption, emotion: badge,
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
