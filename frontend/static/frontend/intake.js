// The intake page (admins): upload clips and source videos into the campaign, a few files at a
// time with a progress bar each, and follow transcoding and candidate generation live.
// Everything goes through the documented API: POST campaigns/{id}/clips/ (one file per
// request, so that each file has its own progress and outcome), POST .../source-videos/,
// GET .../clips/{clip}/, .../ingestion/ and .../source-videos/ (polled), PATCH campaigns/{id}/.
import { api, el, explain, showMessage } from "./api.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const CSRF = app.dataset.csrf;
const base = `campaigns/${CAMPAIGN}/`;
const PARALLEL = 3; // files sent at once
const POLL_MS = 3000;

let scenes = [];
const byFolder = new Map(); // lower-case folder or name -> scene
// clip id -> [rows]: clips whose media is not ready yet. Several rows may name one clip (the same
// file chosen twice, or two files with the same content): each of them gets the outcome.
const following = new Map();
const sourceRows = new Map(); // source video id -> row of this session's uploads
const queue = [];
let active = 0;

// ---- scenes -------------------------------------------------------------------------------

function fillSceneSelects() {
  for (const select of document.querySelectorAll(".scene-select")) {
    select.replaceChildren(
      el("option", { value: "", text: "By folder name" }),
      ...scenes.map((s) => el("option", { value: String(s.id), text: `${s.name} (${s.scenario})` })),
    );
  }
}

// The scene of a file picked from a folder: the nearest enclosing folder named after a scene.
function sceneFromPath(file) {
  const folders = (file.webkitRelativePath || "").split("/").slice(0, -1).reverse();
  for (const name of folders) {
    const scene = byFolder.get(name.toLowerCase());
    if (scene) return scene;
  }
  return null;
}

// ---- uploads ------------------------------------------------------------------------------

function outcome(row, text, ok) {
  const cell = row.querySelector(".outcome");
  cell.textContent = text;
  cell.className = `outcome ${ok === true ? "ok" : ok === false ? "bad" : ""}`;
  row.dataset.outcome = ok === true ? "ok" : ok === false ? "error" : "working";
}

function errorText(xhr) {
  let body = null;
  try {
    body = JSON.parse(xhr.responseText);
  } catch (err) {
    body = null;
  }
  const e = body && body.error;
  if (!e) return `The server answered ${xhr.status}.`;
  // A rejected clip: the API lists each file's own message in details.
  if (Array.isArray(e.details) && e.details.length && e.details[0].message) return e.details[0].message;
  return e.message;
}

function addRow(table, file, scene) {
  if (!table.tHead) {
    table.createTHead().append(el("tr", {},
      el("th", { text: "File" }), el("th", { text: "Scene" }), el("th", { text: "Upload" }),
      el("th", { text: "Outcome" })));
    table.createTBody();
  }
  const bar = el("progress", { max: "1", value: "0", "aria-label": `Upload of ${file.name}` });
  const row = el("tr", { "data-file": file.webkitRelativePath || file.name },
    el("td", { text: file.webkitRelativePath || file.name }),
    el("td", { text: scene ? scene.name : "—" }),
    el("td", {}, bar),
    el("td", { class: "outcome", text: "Waiting…" }));
  table.tBodies[0].append(row);
  return row;
}

function send(job) {
  active += 1;
  const { kind, file, scene, row } = job;
  const form = new FormData();
  form.append(kind === "clip" ? "files" : "file", file, file.name);
  form.append("scene", String(scene.id));
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/v1/${base}${kind === "clip" ? "clips/" : "source-videos/"}`);
  xhr.setRequestHeader("X-CSRFToken", CSRF);
  xhr.setRequestHeader("Accept", "application/json");
  const bar = row.querySelector("progress");
  outcome(row, "Uploading…");
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.value = e.loaded / e.total;
  };
  xhr.onload = () => {
    bar.value = 1;
    if (xhr.status === 200 || xhr.status === 201) {
      const body = JSON.parse(xhr.responseText);
      if (kind === "clip") clipAccepted(row, body.results[0]);
      else sourceAccepted(row, body);
    } else {
      outcome(row, errorText(xhr), false);
    }
    done();
  };
  xhr.onerror = () => {
    outcome(row, "Upload failed: the server could not be reached. Pick the file again to retry.", false);
    done();
  };
  xhr.send(form);
}

function done() {
  active -= 1;
  pump();
}

function pump() {
  while (active < PARALLEL && queue.length) send(queue.shift());
}

function clipAccepted(row, result) {
  if (result.status === "rejected") {
    outcome(row, result.message, false);
    return;
  }
  outcome(row, result.status === "existing" ? "Already here; checking…" : "Uploaded; transcoding…");
  following.set(result.clip_id, [...(following.get(result.clip_id) || []), row]);
  row.dataset.clip = String(result.clip_id);
  followClips();
}

function sourceAccepted(row, video) {
  row.dataset.video = String(video.id);
  sourceRows.set(video.id, row);
  outcome(row, video.created ? "Uploaded; generating candidates…" : "Already imported; following…");
  pollSources();
}

function enqueue(kind, files, select, table) {
  showMessage(null);
  const chosen = scenes.find((s) => String(s.id) === select.value) || null;
  for (const file of files) {
    const scene = chosen || sceneFromPath(file);
    const row = addRow(table, file, scene);
    if (!scene) {
      outcome(row, "No scene: choose one above, or put the file in a folder named after a scene.", false);
      continue;
    }
    queue.push({ kind, file, scene, row });
  }
  pump();
}

function wire(kind, inputIds, selectId, tableId) {
  const select = document.getElementById(selectId);
  const table = document.getElementById(tableId);
  for (const id of inputIds) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => {
      // Hidden files and folders (.DS_Store, ._clip.mp4) are not clips.
      const files = [...input.files].filter((f) => !f.name.startsWith("."));
      enqueue(kind, files, select, table);
      input.value = "";
    });
  }
}

// ---- following ----------------------------------------------------------------------------

async function followClips() {
  let settled = false;
  for (const [id, rows] of [...following].slice(0, 20)) {
    try {
      const { data } = await api("GET", `${base}clips/${id}/`);
      for (const row of rows) {
        if (data.status === "ready") outcome(row, "Ready", true);
        else if (data.status === "failed") outcome(row, data.error || "Its media could not be processed.", false);
        else outcome(row, data.status === "processing" ? "Transcoding…" : "Waiting for a worker…");
      }
      if (data.status === "ready" || data.status === "failed") {
        following.delete(id);
        settled = true;
      }
    } catch (err) {
      if (!err.retryable) following.delete(id);
    }
  }
  // The counts below never lag the rows above: "5 Ready" next to "0 clips" would confuse.
  if (settled) await pollIngestion();
}

function stageChips(video) {
  return el("span", { class: "stages" }, ...(video.stages || []).map((s) =>
    el("span", {
      class: `stage-chip ${s.state}`,
      title: s.total ? `${s.done ?? 0} of ${s.total}` : s.state,
      text: `${s.stage}: ${s.state}${s.state === "running" && s.total ? ` ${Math.round((100 * (s.done || 0)) / s.total)}%` : ""}`,
    })));
}

async function pollSources() {
  const table = document.getElementById("source-videos");
  try {
    const { data } = await api("GET", `${base}source-videos/`);
    table.replaceChildren(
      el("thead", {}, el("tr", {}, el("th", { text: "Source video" }), el("th", { text: "Status" }),
        el("th", { text: "Stages" }), el("th", { text: "Clips" }))),
      el("tbody", {}, ...data.map((v) => el("tr", { "data-video": String(v.id) },
        el("td", { text: `${v.title} (${v.scene})` }),
        el("td", { text: v.status === "failed" ? `failed: ${v.explanation || v.error}` : v.status }),
        el("td", {}, stageChips(v)),
        el("td", { text: String(v.clips_found ?? "—") })))),
    );
    if (!data.length) table.replaceChildren(el("caption", { class: "muted", text: "No source video yet." }));
    for (const v of data) {
      const row = sourceRows.get(v.id);
      if (!row) continue;
      if (v.status === "ready") {
        outcome(row, `Ready: ${v.clips_found ?? 0} candidate clips`, true);
        sourceRows.delete(v.id);
      } else if (v.status === "failed") {
        outcome(row, v.explanation || v.error || "Candidate generation failed.", false);
        sourceRows.delete(v.id);
      } else {
        outcome(row, `Generating candidates: ${v.stage || v.status}…`);
      }
    }
  } catch (err) {
    table.replaceChildren(el("caption", { class: "error", text: explain(err) }));
  }
}

async function pollIngestion() {
  const box = document.getElementById("ingestion");
  try {
    const { data } = await api("GET", `${base}ingestion/`);
    box.replaceChildren(
      el("progress", { max: "1", value: String(data.total ? (data.ready + data.failed) / data.total : 1), "aria-label": "Clips processed" }),
      el("p", { id: "ingestion-counts", text: `${data.total} clips: ${data.ready} ready, ${data.pending} waiting, ${data.processing} transcoding, ${data.failed} failed.` }),
    );
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: explain(err) }));
  }
}

async function tick() {
  await Promise.all([pollIngestion(), pollSources(), followClips()]);
  document.getElementById("live-at").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// ---- assignment settings ------------------------------------------------------------------

async function loadAssignment() {
  const { data } = await api("GET", base);
  document.getElementById("daily-quota").value = data.daily_quota ?? "";
  document.getElementById("priorities").replaceChildren(...scenes.map((s) => el("div", {},
    el("label", { for: `prio-${s.id}`, text: s.name }),
    el("input", {
      type: "number", id: `prio-${s.id}`, "data-scene": String(s.id), min: "-100", max: "100",
      step: "1", value: String((data.scene_priority || {})[String(s.id)] ?? 0), class: "short",
    }))));
}

document.getElementById("assign-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage(null);
  const status = document.getElementById("assign-saved");
  status.textContent = "";
  const quota = document.getElementById("daily-quota").value.trim();
  const priorities = {};
  for (const input of document.querySelectorAll("#priorities input")) {
    const n = Number(input.value || 0);
    if (n) priorities[input.dataset.scene] = n;
  }
  try {
    await api("PATCH", base, { daily_quota: quota === "" ? null : Number(quota), scene_priority: priorities });
    status.textContent = "Saved.";
  } catch (err) {
    showMessage(explain(err));
  }
});

// ---- start --------------------------------------------------------------------------------

async function start() {
  try {
    ({ data: scenes } = await api("GET", "scenes/"));
  } catch (err) {
    showMessage(explain(err));
    return;
  }
  for (const s of scenes) {
    byFolder.set(s.folder.toLowerCase(), s);
    byFolder.set(s.name.toLowerCase(), s);
  }
  fillSceneSelects();
  wire("clip", ["clip-files", "clip-folder"], "clip-scene", "clip-uploads");
  wire("source", ["source-files", "source-folder"], "source-scene", "source-uploads");
  app.dataset.ready = "1";
  loadAssignment().catch((err) => showMessage(explain(err)));
  tick();
  setInterval(tick, POLL_MS);
}

start();
