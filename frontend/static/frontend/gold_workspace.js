// The gold workspace: the annotator workspace's player and keys over a stratified sample of
// clips (GET gold/candidates/), where a reviewer's answer becomes the clip's gold label through
// the same endpoint as one clip's gold on the Tasks page (PUT tasks/{id}/gold/, audited).
//
// Keys: 1-7 make the clip gold with that class; 0 or X leave it out (not sure enough, no usable
// face); U shows the last clip made gold here again, to change its label or take it out (0);
// Space, R, arrows, S and ? as in the annotator workspace. Clips left out are remembered for this
// visit only, so a reload offers them again.
import { ANSWERS, api, el, explain, showMessage } from "./api.js";
import { workspaceKeys } from "./workspace_keys.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const PAGE = 50;

const video = document.getElementById("video");
const stateEl = document.getElementById("state");
const correctionEl = document.getElementById("correction");
const progressEl = document.getElementById("progress");
const sceneEl = document.getElementById("scene");
const helpEl = document.getElementById("help");
const speedEl = document.getElementById("speed");
const NAMES = Object.fromEntries(ANSWERS.map((a) => [a.key, a.name]));

let sample = []; // candidates not shown yet
let current = null; // the candidate on screen
let correcting = null; // {item, label}: the last clip made gold here, shown again
let done = []; // [{item, label}] made gold on this visit, newest last
const leftOut = new Set(); // task ids left out on this visit
let coverage = null; // {clips, gold, target}
let busy = false;
let undoAsked = false; // U pressed while a save was on its way: done once it is saved

function renderProgress() {
  if (!coverage) return;
  // One short line (the page keeps it on one line so the player never moves).
  progressEl.textContent = `Gold clips: ${coverage.gold} · target ${coverage.target} · by you here: ${done.length}`;
  progressEl.title = `${coverage.clips} clips in the campaign; the target is the campaign's gold share of them.`;
}

function setState(text) {
  stateEl.hidden = !text;
  stateEl.textContent = text || "";
  stateEl.classList.toggle("alone", Boolean(text));
}

function play(item) {
  if (!item) {
    video.hidden = true;
    video.pause();
    video.removeAttribute("src");
    video.removeAttribute("poster");
    delete video.dataset.clip;
    return;
  }
  video.hidden = false;
  if (video.dataset.clip !== String(item.clip.id)) {
    video.dataset.clip = String(item.clip.id);
    video.poster = item.clip.poster_url || "";
    video.src = item.clip.video_url;
    video.load();
  }
  video.currentTime = 0;
  video.playbackRate = keys.rate();
  video.play().catch(() => {});
}

function render() {
  const shown = correcting ? correcting.item : current;
  app.dataset.task = shown ? String(shown.task) : "";
  app.dataset.mode = correcting ? "correcting" : "labelling";
  correctionEl.hidden = !correcting;
  if (correcting) {
    correctionEl.textContent = `You made this clip gold as ${NAMES[correcting.label]}. ` +
      "Press another class to change it, 0 to take it out of the gold set, or Esc to go back.";
  }
  for (const b of document.querySelectorAll("#answers button")) {
    b.setAttribute("aria-pressed", correcting && b.dataset.label === correcting.label ? "true" : "false");
  }
  document.getElementById("answers").classList.toggle("idle", !shown);
  sceneEl.textContent = shown ? `Scene: ${shown.scene} · file: ${shown.clip_name}` : "\u00a0";
  if (shown) setState(null);
  else setState(busy ? "Loading clips…" : "No clip is left to label as gold. Thank you!");
  play(shown);
  renderProgress();
}

async function loadSample() {
  busy = true;
  render();
  try {
    const r = await api("GET", `campaigns/${CAMPAIGN}/gold/candidates/?limit=${PAGE}`);
    coverage = r.data.coverage;
    sample = r.data.items.filter((i) => !leftOut.has(i.task));
  } catch (err) {
    showMessage(explain(err));
    sample = [];
  } finally {
    busy = false;
  }
  current = sample.shift() || null;
  render();
}

async function advance() {
  current = sample.shift() || null;
  if (!current) await loadSample();
  else render();
  undoIfAsked();
}

async function setGold(item, label) {
  // null: take the clip out of the gold set again (DELETE, the same service as PUT null).
  const path = `campaigns/${CAMPAIGN}/tasks/${item.task}/gold/`;
  if (label === null) await api("DELETE", path);
  else await api("PUT", path, { gold_label: label });
}

async function answer(key) {
  if (busy) return;
  showMessage(null);
  const label = key === "pass" ? null : key;
  if (correcting) {
    const c = correcting;
    correcting = null;
    busy = true;
    try {
      if (label !== c.label) {
        await setGold(c.item, label);
        const was = done.indexOf(c);
        if (label === null) {
          done.splice(was, 1);
          leftOut.add(c.item.task);
          coverage.gold -= 1;
        } else {
          c.label = label;
        }
        showMessage(label === null ? "Taken out of the gold set." : `Gold label changed to ${NAMES[label]}.`, "info");
      }
    } catch (err) {
      showMessage("The change was not saved: " + explain(err));
    } finally {
      busy = false;
    }
    render();
    undoIfAsked();
    return;
  }
  if (!current) return;
  const item = current;
  if (label === null) {
    leftOut.add(item.task);
    await advance();
    return;
  }
  busy = true;
  try {
    await setGold(item, label);
    done.push({ item, label });
    coverage.gold += 1;
  } catch (err) {
    showMessage(`Clip ${item.clip_name} was not made gold: ${explain(err)}`);
    leftOut.add(item.task);
  } finally {
    busy = false;
  }
  await advance();
}

function undoIfAsked() {
  if (!undoAsked) return;
  undoAsked = false;
  undo();
}

function skip() {
  if (busy || correcting || !current) return;
  showMessage(null);
  leftOut.add(current.task);
  advance();
}

function undo() {
  if (busy) {
    undoAsked = true; // a key pressed while the last answer is saved is not lost
    return;
  }
  if (correcting) return;
  const last = done[done.length - 1];
  if (!last) {
    showMessage("You have not made a clip gold here yet.", "info");
    return;
  }
  showMessage(null);
  correcting = last;
  render();
}

function toggleHelp(open) {
  helpEl.hidden = open === undefined ? !helpEl.hidden : !open;
}

const keys = workspaceKeys({
  video,
  speedEl,
  helpEl,
  fps: () => (correcting ? correcting.item : current)?.clip.fps,
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
  const name = a.key === "pass" ? "Leave out" : a.name;
  answersEl.append(
    el("button", {
      type: "button",
      class: a.key === "pass" ? "answer pass" : "answer",
      "data-label": a.key,
      "aria-label": a.key === "pass" ? `Leave this clip out of the gold set (key ${a.hotkey})` : `Gold: ${a.name} (key ${a.hotkey})`,
      "aria-pressed": "false",
      onclick: (e) => {
        e.currentTarget.blur();
        answer(a.key);
      },
    }, el("kbd", { text: a.hotkey }), " " + name),
  );
}

loadSample();
