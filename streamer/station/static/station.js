// The station status page: every show in this token's scope, refreshed each second, with a few actions.
"use strict";
let token = sessionStorage.getItem("stationToken") || "";

async function api(path, options = {}) {
  const response = await fetch(path, {...options, headers: {authorization: "Bearer " + token,
    "content-type": "application/json"}});
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function button(td, show, action) {
  const b = document.createElement("button");
  b.textContent = action;
  b.onclick = () => api(`/api/shows/${show}/${action}`, {method: "POST"}).catch(e => show_error(e));
  td.appendChild(b);
}

function show_error(e) { document.getElementById("error").textContent = String(e.message || e); }

async function refresh() {
  if (!token) return;
  try {
    const data = await api("/api/shows");
    const body = document.querySelector("#shows tbody");
    body.replaceChildren();
    for (const s of data.shows) {
      const row = document.createElement("tr");
      cell(row, s.name);
      cell(row, s.state + (s.error ? ": " + s.error : ""));
      cell(row, (s.node_id || "").slice(0, 8));
      cell(row, s.frames ?? "");
      cell(row, s.late_frames ?? "");
      cell(row, s.restarts ?? 0);
      cell(row, Object.entries(s.health || {}).map(([k, v]) => k + " " + v.status).join(", "));
      const td = cell(row, "");
      for (const action of ["interrupt", "pause", "resume", "skip"]) button(td, s.name, action);
      body.appendChild(row);
    }
    show_error("");
  } catch (e) { show_error(e); }
}

document.getElementById("login").onsubmit = async (event) => {
  event.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("stationToken", token);
  try {
    const who = await api("/api/whoami");
    document.getElementById("who").textContent = `${who.name} (${who.role}), shows: ${who.show}`;
  } catch (e) { show_error(e); }
  refresh();
};
setInterval(refresh, 1000);
refresh();
