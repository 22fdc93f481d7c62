// The annotator workspace: one clip at a time, answered with the keyboard.
//
// Answers go into a queue in localStorage before anything is sent, and leave it only once the
// API has stored them (201, or 200 "already stored": the API is idempotent per assignment, so
// a retry after a lost response never stores a second vote). The queue survives reloads and
// outages; while it is not empty a banner says so and it is retried with backoff.
//
// The API hands each annotator one live assignment at a time, so the next clip arrives with the
// answer (answer-and-next). When the server cannot be reached, the answer waits in the queue and
// the page shows that it is reconnecting; it goes on by itself once the server answers again.
import { ANSWERS, api, el, explain, showMessage } from "./api.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const USER = app.dataset.user;
const QUEUE_KEY = `lsf-pending-${CAMPAIGN}-${USER}`;
const TODAY_KEY = `lsf-today-${CAMPAIGN}-${USER}`;
const SPEEDS = [1, 0.5, 0.25];

const video = document.getElementById("video");
const stateEl = document.getElementById("state");
const pendingEl = document.getElementById("pending");
const correctionEl = document.getElementById("correction");
const progressEl = document.getElementById("progress");
const helpEl = document.getElementById("help");
const speedEl = document.getElementById("speed");

let queue = loadQueue(); // [{assignment_id, label, time_ms, clip}]
let current = null; // {assignment_id, clip}: the live assignment on screen
let correcting = null; // {assignment_id, clip, label, time_ms}: the last answer, shown again
let needNext = true; // no live assignment known: get one after the queue is stored
let finished = false; // 204: nothing left for this annotator
let inFlight = null; // the queue item being sent right now
let flushing = false;
let backoff = 500;
let retryTimer = null;
let shownAt = performance.now();
let speed = 0;
let answered = null;
let clipTotal = null;

function loadQueue() {
  try {
    const q = JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
    return Array.isArray(q) ? q : [];
  } catch (err) {
    return [];
  }
}

function saveQueue() {
  localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
  renderPending();
}

function today() {
  const date = new Date().toISOString().slice(0, 10);
  let t;
  try {
    t = JSON.parse(localStorage.getItem(TODAY_KEY) || "{}");
  } catch (err) {
    t = {};
  }
  return t.date === date ? t : { date, n: 0 };
}

function countStored() {
  const t = today();
  t.n += 1;
  localStorage.setItem(TODAY_KEY, JSON.stringify(t));
  if (answered !== null) answered += 1;
  renderProgress();
}

function renderProgress() {
  const t = today();
  const total = answered === null ? "…" : answered;
  const of = clipTotal === null ? "" : ` of ${clipTotal} clips`;
  progressEl.textContent = `Answered today: ${t.n} · in this campaign: ${total}${of}`;
}

function renderPending() {
  const n = queue.length;
  pendingEl.hidden = n === 0;
  pendingEl.textContent = n === 1
    ? "1 answer waiting to be saved — retrying"
    : `${n} answers waiting to be saved — retrying`;
}

function setState(text) {
  stateEl.hidden = !text;
  stateEl.textContent = text || "";
  app.dataset.state = text ? "waiting" : "ready";
}

function show(clip) {
  if (!clip) {
    video.removeAttribute("src");
    video.load();
    return;
  }
  if (video.dataset.clip !== String(clip.id)) {
    video.dataset.clip = String(clip.id);
    video.poster = clip.poster_url || "";
    video.src = clip.video_url;
  }
  video.playbackRate = SPEEDS[speed];
  video.play().catch(() => {});
  shownAt = performance.now();
}

function render() {
  const shown = correcting || current;
  app.dataset.assignment = shown ? String(shown.assignment_id) : "";
  app.dataset.mode = correcting ? "correcting" : "answering";
  correctionEl.hidden = !correcting;
  if (correcting) {
    const prev = ANSWERS.find((a) => a.key === correcting.label);
    correctionEl.textContent = `Your last answer was ${prev ? prev.name : correcting.label}. ` +
      "Press the right key to change it, or Esc to go back.";
  }
  for (const b of document.querySelectorAll("#answers button")) {
    b.setAttribute("aria-pressed", correcting && b.dataset.label === correcting.label ? "true" : "false");
  }
  if (shown) {
    setState(null);
    show(shown.clip);
  } else {
    show(null);
    if (finished && queue.length === 0) setState("No clip is left for you in this campaign. Thank you!");
    else if (queue.length) setState("Waiting for the server — your answers are kept and will be saved.");
    else setState("Loading the next clip…");
  }
}

function retryLater(what) {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(what, backoff);
  backoff = Math.min(backoff * 2, 4000);
}

async function flush() {
  if (flushing) return;
  flushing = true;
  clearTimeout(retryTimer);
  let next;
  try {
    while (queue.length) {
      const item = queue[0];
      inFlight = item;
      let r;
      try {
        r = await api("POST", `assignments/${item.assignment_id}/answer-and-next/`, {
          label: item.label,
          time_ms: item.time_ms,
        });
      } catch (err) {
        inFlight = null;
        if (err.retryable) {
          if (!current && !correcting) setState("Reconnecting to the server — your answers are kept.");
          retryLater(flush);
          return;
        }
        // The API refused it for good (e.g. the clip's label is already final): say why.
        queue.shift();
        saveQueue();
        showMessage("An answer could not be saved: " + explain(err));
        continue;
      }
      inFlight = null;
      if (queue[0] === item) queue.shift();
      saveQueue();
      backoff = 500;
      if (r.status === 201) countStored();
      next = r.data.next;
    }
  } finally {
    inFlight = null;
    flushing = false;
  }
  if (needNext) {
    if (next !== undefined) takeOffer(next);
    else await fetchNext();
  }
}

function takeOffer(offer) {
  needNext = false;
  finished = offer === null;
  current = offer ? { assignment_id: offer.assignment.id, clip: offer.clip } : null;
  render();
}

async function fetchNext() {
  needNext = true;
  render();
  try {
    const r = await api("POST", `campaigns/${CAMPAIGN}/next/`);
    backoff = 500;
    takeOffer(r.status === 204 ? null : r.data);
  } catch (err) {
    if (err.retryable) {
      setState("Reconnecting to the server…");
      retryLater(fetchNext);
    } else {
      showMessage(explain(err));
    }
  }
}

function elapsed() {
  return Math.max(0, Math.min(Math.round(performance.now() - shownAt), 3600000));
}

function answer(label) {
  showMessage(null);
  if (correcting) {
    const c = correcting;
    correcting = null;
    if (label !== c.label) {
      queue.push({ assignment_id: c.assignment_id, label, time_ms: c.time_ms, clip: c.clip });
      saveQueue();
    }
    render();
    flush();
    return;
  }
  if (!current) return;
  queue.push({ assignment_id: current.assignment_id, label, time_ms: elapsed(), clip: current.clip });
  saveQueue();
  current = null;
  needNext = true;
  render();
  flush();
}

async function undo() {
  showMessage(null);
  if (correcting) return;
  const last = queue[queue.length - 1];
  if (last && last !== inFlight) {
    // Not sent yet: take it back from the queue and show its clip again.
    queue.pop();
    saveQueue();
    if (!needNext && current) {
      correcting = { ...last };
    } else {
      current = { assignment_id: last.assignment_id, clip: last.clip };
      needNext = false;
    }
    render();
    return;
  }
  if (queue.length) {
    showMessage("Your last answer is being saved; press U again in a moment.", "info");
    return;
  }
  try {
    const r = await api("GET", `campaigns/${CAMPAIGN}/last-answer/`);
    if (r.status === 204 || !r.data.assignment) {
      showMessage("There is no answer of yours to change yet.", "info");
      return;
    }
    correcting = {
      assignment_id: r.data.assignment.id,
      clip: r.data.clip,
      label: r.data.vote.label,
      time_ms: r.data.vote.time_ms,
    };
    render();
  } catch (err) {
    showMessage(explain(err));
  }
}

async function skip() {
  if (correcting || !current) return;
  const held = current;
  try {
    await api("POST", `assignments/${held.assignment_id}/skip/`);
    current = null;
    await fetchNext();
  } catch (err) {
    showMessage("Could not skip: " + explain(err));
  }
}

function toggleHelp(open) {
  helpEl.hidden = open === undefined ? !helpEl.hidden : !open;
}

function step(frames) {
  const shown = correcting || current;
  const fps = (shown && shown.clip.fps) || 25;
  video.pause();
  video.currentTime = Math.max(0, Math.min(video.duration || 0, video.currentTime + frames / fps));
}

const ACTIONS = {
  " ": () => (video.paused ? video.play().catch(() => {}) : video.pause()),
  r: () => {
    video.currentTime = 0;
    video.play().catch(() => {});
  },
  ArrowLeft: () => step(-1),
  ArrowRight: () => step(1),
  s: () => {
    speed = (speed + 1) % SPEEDS.length;
    video.playbackRate = SPEEDS[speed];
    speedEl.textContent = `${SPEEDS[speed]}×`;
  },
  x: skip,
  u: undo,
  "?": () => toggleHelp(),
  h: () => toggleHelp(),
  Escape: () => {
    if (!helpEl.hidden) toggleHelp(false);
    else if (correcting) {
      correcting = null;
      render();
    }
  },
};
for (const a of ANSWERS) ACTIONS[a.hotkey] = () => answer(a.key);

function run(key) {
  if (!helpEl.hidden && key !== "Escape" && key !== "?" && key !== "h") return;
  ACTIONS[key]();
}

// Capture phase on window: the workspace sees every key first and keeps the ones it uses, so
// Space never presses a focused button and arrows never scroll the page.
window.addEventListener(
  "keydown",
  (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (!(key in ACTIONS)) return;
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat && !key.startsWith("Arrow")) return;
    run(key);
  },
  { capture: true },
);

const answersEl = document.getElementById("answers");
for (const a of ANSWERS) {
  answersEl.append(
    el("button", {
      type: "button",
      class: a.key === "pass" ? "answer pass" : "answer",
      "data-label": a.key,
      "aria-label": `${a.name} (key ${a.hotkey})`,
      "aria-pressed": "false",
      onclick: (e) => {
        e.currentTarget.blur();
        answer(a.key);
      },
    }, el("kbd", { text: a.hotkey }), " " + a.name),
  );
}
for (const b of document.querySelectorAll(".controls button")) {
  b.addEventListener("click", () => {
    b.blur();
    run(b.dataset.key);
  });
}
window.addEventListener("online", () => flush());

async function loadProgress() {
  try {
    const r = await api("GET", "campaigns/");
    const mine = r.data.find((c) => String(c.id) === CAMPAIGN);
    if (mine) {
      answered = mine.progress.answered;
      clipTotal = mine.progress.clips;
    }
  } catch (err) {
    // Progress is a nicety; the workspace works without it.
  }
  renderProgress();
}

renderPending();
renderProgress();
loadProgress();
render();
if (queue.length) flush();
else fetchNext();
