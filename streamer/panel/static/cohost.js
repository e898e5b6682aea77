// stagecast co-host page: the co-host's microphone into one of the show's listening inputs.
// The token lives in this closure only (no cookies, no storage, no URL). Audio: getUserMedia (the
// browser's echo cancellation, noise suppression and gain control) -> AudioContext at 16 kHz ->
// AudioWorklet frames of 50 ms -> 16-bit little-endian PCM -> the authenticated /ws/audio socket.
// In push-to-talk mode silence is sent while the button is up, so the show hears where speech ends.
// Every piece of text from the show is inserted with textContent, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const RATE = 16000;
  const FRAME = 800;  // 50 ms at 16 kHz: 20 frames/s, 1600 bytes each
  const MAX_BUFFERED = 64000;  // bytes waiting in the socket (2 s of audio): beyond this, frames are dropped
  const FATAL = { 4400: true, 4403: true, 4404: true, 4409: true, 1009: true };  // no point retrying these
  const ROLE_LEVEL = { viewer: 0, cohost: 1, mod: 2, admin: 3 };
  let token = null;
  let me = null;
  let inputs = {};
  let mic = null;  // {stream, ctx, node}
  let ws = null;
  let retryMs = 500;
  let talking = false;
  let mode = "ptt";
  let show = { state: "idle", enabled: true, muted: false };
  let sentFrames = 0;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  // direction overrides never come from speech; removed so no transcript can show reordered words
  const plain = (text) => String(text).replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
  function error(text) { $("error").textContent = text || ""; }
  function setConn(text, kind) { const n = $("conn"); n.textContent = text; n.className = "pill " + kind; }

  async function api(path) {
    const response = await fetch("/api/" + path, { headers: { Authorization: "Bearer " + token }, cache: "no-store",
      credentials: "omit" });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data };
  }

  // ----- login ---------------------------------------------------------------------------------------
  async function login(candidate) {
    token = candidate;
    const { status, data } = await api("whoami");
    if (status !== 200) {
      token = null;
      $("login-error").textContent = status === 401 ? "That token is not valid." : "Login failed (" + status + ").";
      return;
    }
    if (ROLE_LEVEL[data.role] === undefined || ROLE_LEVEL[data.role] < 1) {
      token = null;
      $("login-error").textContent = "This token is a " + data.role + " token; streaming needs a co-host token.";
      return;
    }
    me = data;
    $("login-error").textContent = "";
    $("login").hidden = true;
    $("app").hidden = false;
    $("who").textContent = me.name + " (" + me.role + ")";
    await loadInputs();
  }

  async function loadInputs() {
    const { status, data } = await api("status");
    if (status !== 200) { error("Cannot read the show's status (" + status + ")."); return; }
    const listening = data.listening || { inputs: [], by_input: {} };
    inputs = {};
    const select = $("input");
    clear(select);
    for (const name of listening.inputs) {
      const info = listening.by_input[name] || {};
      if (!info.browser) continue;  // stream and device inputs are not fed from a page
      inputs[name] = info;
      const option = el("option", (info.speaker || name) + " — " + name);
      option.value = name;
      select.appendChild(option);
    }
    const names = Object.keys(inputs);
    $("mic").disabled = names.length === 0;
    if (names.length === 0) error("The show offers no co-host input (listen.inputs with type: browser).");
    else error("");
    show.enabled = listening.enabled;
    renderState();
  }

  function logout(reason) {
    stopMic();
    token = null;
    me = null;
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = reason || "";
  }

  // ----- microphone ------------------------------------------------------------------------------------
  async function startMic() {
    error("");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      error("This browser gives no microphone here: open the page over HTTPS or on localhost.");
      return;
    }
    if (!window.AudioWorkletNode) { error("This browser has no AudioWorklet; use a current Chrome, Edge, Firefox or Safari."); return; }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 } });
    } catch (e) {
      error("No microphone: " + (e && e.name === "NotAllowedError" ? "permission denied" : (e && e.message) || e));
      return;
    }
    let ctx;
    let source;
    try {
      ctx = new AudioContext({ sampleRate: RATE });
      source = ctx.createMediaStreamSource(stream);
    } catch (e) {  // a browser that cannot capture into a 16 kHz context: run at its rate, the worklet resamples
      if (ctx) ctx.close();
      ctx = new AudioContext();
      source = ctx.createMediaStreamSource(stream);
    }
    try {
      await ctx.audioWorklet.addModule("/static/cohost-worklet.js");
    } catch (e) {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
      error("Cannot load the audio worklet: " + ((e && e.message) || e));
      return;
    }
    const node = new AudioWorkletNode(ctx, "pcm-frames", {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: { targetRate: RATE, frame: FRAME } });
    const sink = ctx.createGain();
    sink.gain.value = 0;  // the worklet must be pulled by the graph; nothing is played back
    source.connect(node);
    node.connect(sink);
    sink.connect(ctx.destination);
    node.port.onmessage = (event) => onFrame(event.data);
    await ctx.resume();
    mic = { stream, ctx, node, input: $("input").value };
    for (const track of stream.getAudioTracks()) track.onended = () => { error("The microphone was disconnected."); stopMic(); };
    $("mic").textContent = "Stop microphone";
    $("mic").dataset.on = "true";
    $("input").disabled = true;
    $("talk").disabled = mode !== "ptt";
    connect();
    renderSending();
  }

  function stopMic() {
    const current = mic;
    mic = null;
    talking = false;
    if (ws) { const socket = ws; ws = null; socket.onclose = null; socket.close(1000); }
    if (current) {
      current.node.port.onmessage = null;
      current.stream.getTracks().forEach((t) => t.stop());
      current.ctx.close();
    }
    $("mic").textContent = "Start microphone";
    $("mic").dataset.on = "false";
    $("input").disabled = false;
    $("talk").disabled = true;
    $("talk").dataset.down = "false";
    setMeter(0, 0);
    setConn("mic off", "");
    renderSending();
  }

  function toS16(samples, silent) {
    const out = new ArrayBuffer(samples.length * 2);
    if (silent) return out;  // zeros
    const view = new DataView(out);
    for (let i = 0; i < samples.length; i++) {
      const v = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(i * 2, v < 0 ? v * 32768 : v * 32767, true);
    }
    return out;
  }

  function onFrame(frame) {
    setMeter(frame.rms, frame.peak);
    if (!ws || ws.readyState !== WebSocket.OPEN || !ws.ready) return;
    if (ws.bufferedAmount > MAX_BUFFERED) return;  // the network is behind: drop, never queue up
    ws.send(toS16(frame.samples, !sending()));
    sentFrames += 1;
  }

  function sending() { return mic !== null && (mode === "open" || talking); }

  function setMeter(rms, peak) {
    const db = 20 * Math.log10(rms + 1e-9);
    const level = Math.max(0, Math.min(1, (db + 60) / 60));
    const meter = $("meter");
    $("meter-fill").style.width = Math.round(level * 100) + "%";
    meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
    meter.dataset.clip = String(peak > 0.98);
  }

  function setTalking(down) {
    if (mode !== "ptt" || !mic) down = false;
    if (down === talking) return;
    talking = down;
    $("talk").dataset.down = String(down);
    renderSending();
  }

  function renderSending() {
    const node = $("sending");
    const on = sending();
    node.dataset.on = String(on);
    if (!mic) node.textContent = "Microphone off";
    else if (on) node.textContent = mode === "open" ? "Open mic: the show hears you" : "Talking: the show hears you";
    else node.textContent = "Muted: hold the button or Space to talk";
  }

  // ----- the audio socket ---------------------------------------------------------------------------------
  function connect() {
    if (!mic) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/audio");
    socket.binaryType = "arraybuffer";
    socket.ready = false;
    ws = socket;
    setConn("connecting", "warn");
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "auth", token, input: mic.input, sample_rate: RATE, format: "s16le" }));
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "hello") { socket.ready = true; retryMs = 500; setConn("on air", "ok"); return; }
      if (msg.type === "error") { error(msg.detail); return; }
      handle(msg);
    };
    socket.onclose = (event) => {
      if (ws !== socket) return;
      ws = null;
      if (!mic) return;
      if (event.code === 4401) { logout("The token was rejected or revoked."); return; }
      if (FATAL[event.code]) {
        setConn("stopped", "bad");
        if (!$("error").textContent) error("The show closed the audio stream (" + event.code + ").");
        stopMic();
        return;
      }
      setConn("reconnecting", "bad");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  // ----- what the show says about this input -----------------------------------------------------------------
  const utterances = new Map();

  function handle(msg) {
    if (msg.type === "listening") {
      show.state = msg.state;
      if (msg.enabled !== undefined) show.enabled = msg.enabled;
      if (msg.muted !== undefined) show.muted = msg.muted;
      renderState();
    } else if (msg.type === "listen_switch") {
      show.enabled = msg.enabled;
      show.muted = mic !== null && msg.muted.indexOf(mic.input) >= 0;
      renderState();
    } else if (msg.type === "heard") {
      heard(msg);
    } else if (msg.type === "barge_in") {
      const li = el("li", null, "note-line");
      li.appendChild(el("span", "You cut in after " + Math.round(msg.latency_ms) + " ms", "note"));
      if (msg.heard && msg.heard.length) li.appendChild(el("span", "(it had said: " + msg.heard.join(" ") + ")", "note"));
      addLine(li);
    } else if (msg.type === "voice_decided" && !msg.accepted) {
      const li = [...utterances.values()].pop();
      if (li) { li.classList.add("rejected"); li.appendChild(el("span", "[" + (msg.rule || "blocked") + "]", "note")); }
    }
  }

  function heard(msg) {
    let li = utterances.get(msg.utterance);
    if (!li) {
      li = el("li");
      li.appendChild(el("span", msg.speaker, "who"));
      li.appendChild(el("span", "", "text"));
      utterances.set(msg.utterance, li);
      addLine(li);
      while (utterances.size > 50) utterances.delete(utterances.keys().next().value);
    }
    li.className = msg.partial ? "partial" : "final";
    const text = li.querySelector(".text");
    text.textContent = plain(msg.text) || (msg.partial ? "…" : "(nothing recognised)");
    text.lang = msg.language || "";
    text.dir = "auto";
  }

  function addLine(li) {
    const list = $("transcript");
    list.prepend(li);
    while (list.children.length > 60) list.removeChild(list.lastChild);
  }

  function renderState() {
    const node = $("state");
    let state = show.state || "idle";
    if (!show.enabled) state = "off";
    else if (show.muted) state = "muted";
    node.dataset.state = state;
    node.textContent = { off: "listening is off", muted: "your input is muted", idle: "idle",
      listening: "listening", thinking: "thinking" }[state] || state;
    $("switches").textContent = show.enabled ? (show.muted ? "A moderator muted this input." : "")
      : "A moderator switched listening off.";
  }

  // ----- controls ---------------------------------------------------------------------------------------------
  function on(id, event, fn) { $(id).addEventListener(event, (e) => { e.preventDefault(); fn(e); }); }
  function typing(target) { return target && /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName) && target.type !== "radio"; }

  document.addEventListener("DOMContentLoaded", () => {
    on("login-form", "submit", () => {
      const input = $("token");
      const candidate = input.value.trim();
      input.value = "";  // the token must not linger in the DOM
      login(candidate);
    });
    on("logout", "click", () => logout(""));
    on("mic", "click", () => { if (mic) stopMic(); else startMic(); });
    for (const radio of document.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", () => {
        mode = radio.value;
        setTalking(false);
        $("talk").disabled = mode !== "ptt" || !mic;
        renderSending();
      });
    }
    const talk = $("talk");
    talk.addEventListener("pointerdown", (e) => { e.preventDefault(); talk.setPointerCapture(e.pointerId); setTalking(true); });
    for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) talk.addEventListener(name, () => setTalking(false));
    talk.addEventListener("contextmenu", (e) => e.preventDefault());  // a long press on a phone
    document.addEventListener("keydown", (e) => {
      if (e.code !== "Space" || !mic || mode !== "ptt" || typing(e.target)) return;
      e.preventDefault();
      if (!e.repeat) setTalking(true);
    });
    document.addEventListener("keyup", (e) => {
      if (e.code !== "Space" || typing(e.target)) return;
      e.preventDefault();
      setTalking(false);
    });
    window.addEventListener("blur", () => setTalking(false));
  });
})();
