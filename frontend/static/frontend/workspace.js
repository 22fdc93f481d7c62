// The annotator workspace: one clip at a time, answered with the keyboard.
//
// Answers (and skips) go into a queue in localStorage before anything is sent, and leave it
// only once the API has stored them (201, or 200 "already stored": the API is idempotent per
// assignment, so a retry after a lost response never stores a second vote). The queue survives
// reloads and outages; while it is not empty a banner says so and it is retried with backoff.
//
// The page holds two clips: the one on screen and one ahead (`ahead=1`), which plays muted in a
// hidden second <video> until its data is buffered. An answer swaps the two elements at once and
// sends the answer in the background; its response (answer-and-next) names the next clip to
// preload. So moving on never waits on the network, and during an outage the clip ahead is still
// there to work on.
import { ANSWERS, api, el, explain, showMessage } from "./api.js";
import { workspaceKeys } from "./workspace_keys.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const USER = app.dataset.user;
const QUEUE_KEY = `lsf-pending-${CAMPAIGN}-${USER}`;
// The API's refusals to hand out clips (next/ and answer-and-next/): the campaign is paused or
// closed (409), or this annotator is paused (403). Their message is what the page says, in place
// of the player; an answer that got one of them back was stored all the same.
const BLOCKED = new Set(["campaign_paused", "campaign_closed", "annotator_paused"]);
const BLOCKED_RETRY_MS = 30000;
// What the page calls each refusal, above the API's message (which gives the reason).
const BLOCKED_TITLE = {
  annotator_paused: "Paused",
  campaign_paused: "Campaign paused",
  campaign_closed: "Campaign closed",
};

const stateEl = document.getElementById("state");
const pendingEl = document.getElementById("pending");
const correctionEl = document.getElementById("correction");
const progressEl = document.getElementById("progress");
const helpEl = document.getElementById("help");
const speedEl = document.getElementById("speed");
const qualificationEl = document.getElementById("qualification");
const qualProgressEl = document.getElementById("qual-progress");
const feedbackEl = document.getElementById("feedback");
const NAMES = Object.fromEntries(ANSWERS.map((a) => [a.key, a.name]));

// The visible <video id="video"> and a hidden twin that buffers the clip ahead; they swap roles.
let video = document.getElementById("video");
video.removeAttribute("autoplay"); // show() plays; the spare must stay paused on its first frame
let spare = video.cloneNode(false);
spare.removeAttribute("id");
spare.hidden = true;
spare.setAttribute("aria-hidden", "true");
video.after(spare);

let queue = loadQueue(); // [{assignment_id, label, time_ms, clip} | {assignment_id, skip, clip}]
let current = null; // {assignment_id, clip}: the assignment on screen
let upcoming = []; // assignments held for this annotator, not shown yet; the first is preloaded
let correcting = null; // {assignment_id, clip, label, time_ms}: a stored answer, shown again
let finished = false; // the server has no clip left for this annotator
let inFlight = null; // the queue item being sent right now
let flushing = false;
let backoff = 500;
let retryTimer = null;
let shownAt = performance.now();
let answered = null; // in this campaign, from the API, then counted here
let answeredToday = null;
let clipTotal = null;
let blocked = null; // {code, message}: the server hands out no clip to this annotator now
let blockedTimer = null;
let checkedAt = null; // when the page last asked the server for a clip while blocked
// The newcomer's qualification (issue 14): {answered, right, clips, state} while one is asked of
// this annotator (state "qualifying", then "qualified" or "failed"), else null. The page
// brings it; each qualification answer's feedback updates it.
const qualificationData = document.getElementById("qualification-data");
let qualification = qualificationData ? JSON.parse(qualificationData.textContent) : null;

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

function countStored() {
  if (answered !== null) answered += 1;
  if (answeredToday !== null) answeredToday += 1;
  renderProgress();
}

function renderProgress() {
  const today = answeredToday === null ? "…" : answeredToday;
  const total = answered === null ? "…" : answered;
  // Once nothing is left for this annotator, "15 of 18" would read as work still to do: the
  // other clips have their votes from others (or were set aside), so only the count is shown.
  const done = finished && queue.length === 0;
  const of = done ? " · all done" : clipTotal === null ? "" : ` of ${clipTotal} clips`;
  progressEl.textContent = `Answered today: ${today} · in this campaign: ${total}${of}`;
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

function load(element, clip) {
  element.dataset.clip = String(clip.id);
  element.poster = clip.poster_url || "";
  element.src = clip.video_url;
  element.load();
}

// Put a clip on screen and play it from the start; a clip already there is left as it is
// (paused, slowed, stepped), so a render after a response never disturbs the annotator.
function show(clip) {
  if (!clip) {
    // Nothing to work on: no frame or poster of an answered clip stays on screen.
    video.hidden = true;
    if (video.dataset.clip) {
      video.pause();
      video.removeAttribute("src");
      video.removeAttribute("poster");
      delete video.dataset.clip;
      video.load();
    }
    return;
  }
  video.hidden = false;
  if (video.dataset.clip === String(clip.id)) return;
  if (spare.dataset.clip === String(clip.id)) {
    // The clip was preloaded: swap the two elements, no request is made now.
    const shown = spare;
    spare = video;
    video = shown;
    spare.pause();
    spare.removeAttribute("id");
    spare.hidden = true;
    spare.setAttribute("aria-hidden", "true");
    video.id = "video";
    video.hidden = false;
    video.removeAttribute("aria-hidden");
    if (video.currentTime !== 0) video.currentTime = 0; // a seek would drop its buffered frame
  } else {
    load(video, clip);
  }
  video.playbackRate = keys.rate();
  video.play().catch(() => {});
  shownAt = performance.now();
}

// Buffer the first clip held ahead in the hidden element (it stays paused there).
function preload() {
  const next = upcoming[0];
  app.dataset.ahead = next ? String(next.assignment_id) : "";
  if (!next) {
    app.dataset.aheadReady = "0";
    return;
  }
  if (spare.dataset.clip === String(next.clip.id)) return;
  app.dataset.aheadReady = "0";
  load(spare, next.clip);
}

for (const element of [video, spare]) {
  element.addEventListener("canplaythrough", (event) => {
    const next = upcoming[0];
    if (event.target === spare && next && spare.dataset.clip === String(next.clip.id)) {
      app.dataset.aheadReady = "1";
    }
  });
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
  document.getElementById("answers").classList.toggle("idle", !shown);
  stateEl.classList.toggle("alone", !shown);
  stateEl.classList.toggle("blocked", !shown && blocked !== null);
  app.dataset.blocked = blocked ? blocked.code : "";
  // Blocked, the page is the message alone: no player box, no controls, no answer buttons.
  app.classList.toggle("is-blocked", !shown && blocked !== null);
  if (shown) {
    setState(null);
    show(shown.clip);
  } else {
    show(null);
    if (blocked) renderBlocked();
    else if (finished && queue.length === 0) setState("No clip is left for you in this campaign. Thank you!");
    else if (queue.length) setState("Waiting for the server — your answers are kept and will be saved.");
    else setState("Loading the next clip…");
  }
  preload();
}

// The refusal, in the player's place: what it is, the API's reason, and (unless the campaign is
// closed) a way to ask again at once, besides the check every 30 seconds.
function renderBlocked() {
  stateEl.hidden = false;
  app.dataset.state = "waiting";
  const parts = [
    el("strong", { class: "blocked-title", text: BLOCKED_TITLE[blocked.code] || "No clip for you now" }),
    el("span", { class: "blocked-reason", text: blocked.message }),
  ];
  if (blocked.code !== "campaign_closed") {
    const when = checkedAt ? ` Last checked at ${checkedAt.toLocaleTimeString()}.` : "";
    parts.push(el("span", { class: "blocked-next" },
      el("button", { type: "button", id: "check-again", onclick: checkAgain }, "Check again"),
      el("span", { class: "muted", text: ` This page also checks by itself every 30 seconds.${when}` })));
  }
  stateEl.replaceChildren(...parts);
}

function checkAgain(event) {
  if (event) event.currentTarget.blur();
  clearTimeout(blockedTimer);
  fetchNext();
}

// The server refuses clips for now: drop every clip held (their leases lapse on the server),
// clear both players and say why, in place of the player. A pause may be lifted: ask again now
// and then; a closed campaign stays closed.
function block(err) {
  blocked = { code: err.code, message: err.message };
  checkedAt = new Date();
  if (err.code === "annotator_paused" && qualification && qualification.state !== "qualified") {
    // The pause's reason says how the qualification went; the last feedback is out of date.
    qualification = { ...qualification, state: "failed" };
    feedbackEl.hidden = true;
    renderQualification();
  }
  current = null;
  correcting = null;
  upcoming = [];
  if (spare.dataset.clip) {
    spare.pause();
    spare.removeAttribute("src");
    spare.removeAttribute("poster");
    delete spare.dataset.clip;
    spare.load();
  }
  showMessage(null);
  render();
  clearTimeout(blockedTimer);
  if (err.code !== "campaign_closed") blockedTimer = setTimeout(fetchNext, BLOCKED_RETRY_MS);
}

// Take in what the server holds for this annotator (an offer and the one ahead of it); clips
// already on screen, held, or answered in the queue are not taken twice.
function reconcile(offer) {
  // A pause of this annotator was lifted while the page waited: say welcome back (once).
  if (blocked && blocked.code === "annotator_paused") loadProgress();
  const known = new Set(queue.map((q) => q.assignment_id));
  for (const held of [current, correcting, ...upcoming]) if (held) known.add(held.assignment_id);
  for (const o of offer ? [offer, offer.ahead] : []) {
    if (!o || known.has(o.assignment.id)) continue;
    known.add(o.assignment.id);
    const held = { assignment_id: o.assignment.id, clip: o.clip };
    if (!current) current = held;
    else upcoming.push(held);
  }
  finished = offer === null && !current && upcoming.length === 0;
  if (blocked && blocked.code === "annotator_paused" && qualification && qualification.state === "failed") {
    // Reinstated during the qualification: it starts afresh (the gold evidence counts from
    // the reinstatement on).
    qualification = { ...qualification, answered: 0, right: 0, state: "qualifying" };
    feedbackEl.hidden = true;
    renderQualification();
  }
  blocked = null;
  render();
  renderProgress();
}

function retryLater(what) {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(what, backoff);
  backoff = Math.min(backoff * 2, 4000);
}

function send(item) {
  if (item.skip) return api("POST", `assignments/${item.assignment_id}/skip/`);
  return api("POST", `assignments/${item.assignment_id}/answer-and-next/?ahead=1`, {
    label: item.label,
    time_ms: item.time_ms,
  });
}

async function flush() {
  if (flushing) return;
  flushing = true;
  clearTimeout(retryTimer);
  let next; // the last answer-and-next's offer (undefined: none came back)
  let refused = null; // a BLOCKED error that came back with a stored answer
  try {
    while (queue.length) {
      const item = queue[0];
      inFlight = item;
      let r;
      try {
        r = await send(item);
      } catch (err) {
        inFlight = null;
        if (!item.skip && BLOCKED.has(err.code)) {
          // Stored, but no next clip is handed out.
          if (queue[0] === item) queue.shift();
          saveQueue();
          countStored();
          refused = err;
          continue;
        }
        if (err.retryable) {
          if (!current && !correcting) setState("Reconnecting to the server — your answers are kept.");
          retryLater(flush);
          return;
        }
        // The API refused it for good (e.g. the clip's label is already final): say why.
        if (queue[0] === item) queue.shift();
        saveQueue();
        showMessage((item.skip ? "A skip" : "An answer") + " could not be saved: " + explain(err));
        continue;
      }
      inFlight = null;
      if (queue[0] === item) queue.shift();
      saveQueue();
      backoff = 500;
      if (item.skip) {
        next = undefined;
        continue;
      }
      if (r.status === 201) countStored();
      showFeedback(r.data.vote && r.data.vote.feedback, item.label);
      next = r.data.next;
    }
  } finally {
    inFlight = null;
    flushing = false;
  }
  if (refused) block(refused);
  else if (next !== undefined) reconcile(next);
  else await fetchNext();
}

// A qualification clip's answer comes back with the right answer: say it (issue 14), above
// the player, until the next one. The clip it is about has already made way for the next.
function showFeedback(feedback, given) {
  if (!feedback) return;
  qualification = feedback.qualification;
  const right = NAMES[feedback.right_answer] || feedback.right_answer;
  feedbackEl.hidden = false;
  feedbackEl.dataset.correct = feedback.correct ? "1" : "0";
  feedbackEl.replaceChildren(
    el("strong", { text: feedback.correct ? "✓ Right." : "✗ Not quite." }),
    feedback.correct
      ? ` The clip you just answered was ${right}.`
      : ` The clip you just answered was ${right}, not ${NAMES[given] || given}.`,
  );
  renderQualification();
}

function renderQualification() {
  // Failed, the annotator is paused: the pause's message says it all, alone on the page.
  qualificationEl.hidden = !qualification || qualification.state === "failed";
  if (!qualification) return;
  const q = qualification;
  qualificationEl.dataset.state = q.state;
  let head;
  let note;
  if (q.state === "qualified") {
    head = `Qualification passed: ${q.right} of ${q.answered} right.`;
    note = " From now on your clips are real clips; no answer is shown after them.";
  } else if (q.state === "failed") {
    head = "Qualification not passed.";
    note = "";
  } else {
    head = q.answered < q.clips
      ? `Qualification: ${q.answered} of ${q.clips} qualification clips answered, ${q.right} right.`
      : `Qualification: ${q.answered} qualification clips answered, ${q.right} right; a few more are asked.`;
    note = " These clips have a known answer, shown after each of yours; real clips come once you pass.";
  }
  qualProgressEl.replaceChildren(el("strong", { text: head }), el("span", { class: "qual-note", text: note }));
}

async function fetchNext() {
  if (!current) render();
  try {
    const r = await api("POST", `campaigns/${CAMPAIGN}/next/?ahead=1`);
    backoff = 500;
    reconcile(r.status === 204 ? null : r.data);
  } catch (err) {
    if (BLOCKED.has(err.code)) {
      block(err);
    } else if (err.retryable) {
      if (!current) setState("Reconnecting to the server…");
      retryLater(fetchNext);
    } else {
      showMessage(explain(err));
    }
  }
}

function elapsed() {
  return Math.max(0, Math.min(Math.round(performance.now() - shownAt), 3600000));
}

// Leave the clip on screen for the next one held (shown at once), or for none yet.
function moveOn(item) {
  queue.push(item);
  saveQueue();
  current = upcoming.shift() || null;
  render();
  flush();
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
  moveOn({ assignment_id: current.assignment_id, label, time_ms: elapsed(), clip: current.clip });
}

function skip() {
  showMessage(null);
  if (correcting || !current) return;
  moveOn({ assignment_id: current.assignment_id, skip: true, clip: current.clip });
}

async function undo() {
  showMessage(null);
  if (correcting || blocked) return;
  const last = queue[queue.length - 1];
  if (last && last !== inFlight) {
    // Not sent yet: take it back from the queue; its clip is on screen again, still held.
    queue.pop();
    saveQueue();
    if (current) upcoming.unshift(current);
    current = { assignment_id: last.assignment_id, clip: last.clip };
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

function toggleHelp(open) {
  helpEl.hidden = open === undefined ? !helpEl.hidden : !open;
  for (const v of helpEl.querySelectorAll("video")) {
    if (helpEl.hidden) v.pause();
    else v.play().catch(() => {});
  }
}

// The campaign's guidelines (rendered and sanitised by the server) sit at the top of the help
// overlay. They open by themselves on the annotator's first visit, and again whenever the
// admins change them: the version last seen is kept in this browser's localStorage.
const GUIDELINES_KEY = `lsf-guidelines-${CAMPAIGN}-${USER}`;

async function loadGuidelines() {
  let data;
  try {
    ({ data } = await api("GET", `campaigns/${CAMPAIGN}/guidelines/`));
  } catch (err) {
    return; // the workspace works without them
  }
  if (!data.html && !data.examples.length) return;
  document.getElementById("guidelines-body").innerHTML = data.html;
  document.getElementById("guideline-examples").replaceChildren(
    ...data.examples.map((ex) =>
      el("figure", { class: "example" },
        el("figcaption", { text: ex.name }),
        ...ex.clips.map((c) => el("video", {
          src: c.video_url, poster: c.poster_url || null, muted: true, loop: true,
          playsinline: true, preload: "metadata", "aria-label": `Example of ${ex.name}`,
          "data-example": String(c.id),
        })),
      )),
  );
  for (const v of document.querySelectorAll("#guideline-examples video")) v.muted = true;
  document.getElementById("guidelines").hidden = false;
  let seen = null;
  try {
    seen = localStorage.getItem(GUIDELINES_KEY);
    localStorage.setItem(GUIDELINES_KEY, data.version);
  } catch (err) {
    // Private mode without storage: shown on every visit instead.
  }
  if (seen !== data.version) toggleHelp(true);
}
document.getElementById("guidelines-close").addEventListener("click", () => toggleHelp(false));

const keys = workspaceKeys({
  video,
  speedEl,
  helpEl,
  fps: () => (correcting || current)?.clip.fps,
  toggleHelp,
  skip,
  undo,
  answer,
  cancel: () => {
    if (!correcting) return;
    correcting = null;
    render();
  },
});

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
window.addEventListener("online", () => flush());

// After a pause is lifted the workspace says so once (in this browser): the reinstatement last
// welcomed is kept in localStorage, as the guidelines' version is.
const WELCOME_KEY = `lsf-welcome-${CAMPAIGN}-${USER}`;

function welcomeBack(reinstated) {
  if (!reinstated) return;
  try {
    if (localStorage.getItem(WELCOME_KEY) === reinstated.at) return;
    localStorage.setItem(WELCOME_KEY, reinstated.at);
  } catch (err) {
    return; // no storage: better no welcome than one on every visit
  }
  const when = new Date(reinstated.at).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  const note = reinstated.note ? ` The reviewer's note: “${reinstated.note}”` : "";
  showMessage(`Welcome back! A reviewer let you work again on ${when}; your answers count again.${note}`, "info");
  app.dataset.welcome = reinstated.at;
}

async function loadProgress() {
  try {
    const r = await api("GET", "campaigns/");
    const mine = r.data.find((c) => String(c.id) === CAMPAIGN);
    if (mine) {
      answered = mine.progress.answered;
      answeredToday = mine.progress.answered_today;
      clipTotal = mine.progress.clips;
      welcomeBack(mine.reinstated);
    }
  } catch (err) {
    // Progress is a nicety; the workspace works without it.
  }
  renderProgress();
}

renderPending();
renderProgress();
renderQualification();
loadProgress();
loadGuidelines();
render();
if (queue.length) flush();
else fetchNext();
