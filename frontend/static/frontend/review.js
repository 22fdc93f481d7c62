// The review queue: disputed clips one at a time, decided with one key each, and the
// Improper gold batches below. Everything comes from the review API (see annotations/REVIEW.md).
import { ANSWERS, api, el, explain, showMessage } from "./api.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const base = `campaigns/${CAMPAIGN}/review/`;
const video = document.getElementById("video");
let items = [];
let index = 0;
let busy = false;
let confirmTimer = null;

const leadingSel = document.getElementById("f-leading");
for (const a of ANSWERS) leadingSel.append(el("option", { value: a.key, text: a.name }));

function query() {
  const p = new URLSearchParams({ limit: "50" });
  const scene = document.getElementById("f-scene").value.trim();
  if (scene) p.set("scene", scene);
  if (leadingSel.value) p.set("leading", leadingSel.value);
  return p.toString();
}

async function loadQueue(keepTask) {
  try {
    const r = await api("GET", base + "queue/?" + query());
    items = r.data.items;
    const scenes = new Set(items.map((i) => i.scene.name));
    const dl = document.getElementById("scenes");
    for (const s of scenes) {
      if (![...dl.options].some((o) => o.value === s)) dl.append(el("option", { value: s }));
    }
    index = Math.max(0, Math.min(index, items.length - 1));
    if (keepTask) index = Math.max(0, items.findIndex((i) => i.task === keepTask));
    render();
  } catch (err) {
    showMessage(explain(err));
  }
}

function name(key) {
  const a = ANSWERS.find((x) => x.key === key);
  return a ? a.name : key;
}

function render() {
  const item = items[index];
  document.getElementById("empty").hidden = Boolean(item);
  app.dataset.empty = item ? "0" : "1";
  app.dataset.task = item ? String(item.task) : "";
  const queueEl = document.getElementById("queue");
  queueEl.replaceChildren(...items.map((it, i) => el("li", { "aria-current": i === index ? "true" : "false" },
    el("a", { href: "#", onclick: (e) => { e.preventDefault(); index = i; render(); } },
      `${it.clip.name} — ${it.scenario.name} / ${it.scene.name} — leading ${it.leading.map(name).join(", ")} ` +
      `(${Math.round(it.agreement * 100)}%)`))));
  const counts = document.getElementById("counts");
  const voters = document.getElementById("voters");
  const decide = document.getElementById("decide");
  if (!item) {
    // Nothing matches: stop and blank the player, so no settled clip keeps playing here.
    video.hidden = true;
    video.pause();
    video.removeAttribute("src");
    video.removeAttribute("poster");
    delete video.dataset.task;
    video.load();
    counts.replaceChildren();
    voters.replaceChildren();
    decide.replaceChildren();
    document.getElementById("clip-meta").textContent = "";
    document.getElementById("item-title").textContent = "Disputed clips";
    return;
  }
  video.hidden = false;
  document.getElementById("item-title").textContent = `Clip ${index + 1} of ${items.length}: ${item.clip.name}`;
  if (video.dataset.task !== String(item.task)) {
    video.dataset.task = String(item.task);
    video.poster = item.clip.poster_url || "";
    video.src = item.clip.video_url;
    video.play().catch(() => {});
  }
  const ref = item.reference_label ? ` · reference: ${name(item.reference_label)}` : "";
  const ds = item.ds_label ? ` · Dawid–Skene: ${name(item.ds_label)}` : "";
  document.getElementById("clip-meta").textContent =
    `${item.scenario.name} / ${item.scene.name} · ${item.vote_count} votes · agreement ` +
    `${Math.round(item.agreement * 100)}%${ref}${ds}`;
  counts.replaceChildren(
    el("thead", {}, el("tr", {}, el("th", { text: "Answer" }), el("th", { text: "Votes" }))),
    el("tbody", {}, ...ANSWERS.filter((a) => item.counts[a.key]).map((a) =>
      el("tr", {}, el("td", { text: a.name }), el("td", { text: String(item.counts[a.key]) })))),
  );
  voters.replaceChildren(...item.votes.map((v) => el("li", { class: v.valid ? null : "invalid" },
    `${v.annotator}: ${name(v.answer)}` + (v.valid ? "" : " (invalidated)"))));
  decide.replaceChildren(
    ...ANSWERS.filter((a) => a.key !== "pass").map((a) => el("button", {
      type: "button", "aria-label": `Label ${a.name} (key ${a.hotkey})`,
      onclick: () => decideTask({ action: "label", label: a.key }),
    }, el("kbd", { text: a.hotkey }), " " + a.name)),
    el("button", { type: "button", class: "discard", "aria-label": "Discard (key D)",
      onclick: () => decideTask({ action: "discard" }) }, el("kbd", { text: "D" }), " Discard"),
    el("button", { type: "button", class: "more", "aria-label": "One more vote (key M)",
      onclick: () => decideTask({ action: "more_votes", extra_votes: 1 }) }, el("kbd", { text: "M" }), " More votes"),
  );
}

// Say what was saved, in a status line floating at the top of the window for a few seconds.
function confirmDecision(item, body) {
  const what = body.action === "label" ? `labelled ${name(body.label)}`
    : body.action === "discard" ? "discarded"
    : "sent back for one more vote";
  const left = items.length === 0 ? "No disputed clip is left." : `${items.length} left to review.`;
  const box = document.getElementById("confirm");
  box.textContent = `Saved: ${item.clip.name} ${what}. ${left}`;
  box.hidden = false;
  clearTimeout(confirmTimer);
  confirmTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

async function decideTask(body) {
  const item = items[index];
  if (!item || busy) return;
  busy = true;
  showMessage(null);
  document.getElementById("confirm").hidden = true;
  try {
    await api("POST", `${base}tasks/${item.task}/decisions/`, { ...body, version: item.review_version });
    items.splice(index, 1);
    render();
    await loadQueue(items[index] ? items[index].task : undefined);
    confirmDecision(item, body);
  } catch (err) {
    showMessage(explain(err));
    if (err.code === "stale_version") await loadQueue(item.task);
  } finally {
    busy = false;
  }
}

// Improper batches: the first waiting one is selected; A accepts it, R then R again rejects it
// (rejecting stops its votes counting, so it asks for the second press).
let batches = [];
let rejectArmed = null; // the id of the batch a first R armed, until another key

async function loadBatches() {
  const box = document.getElementById("batches");
  try {
    const r = await api("GET", base + "batches/");
    batches = r.data.items;
    rejectArmed = null;
    app.dataset.batch = batches.length ? String(batches[0].id) : "";
    if (!batches.length) {
      box.replaceChildren(el("p", { class: "muted", text: "No Improper batch is waiting." }));
      return;
    }
    box.replaceChildren(el("table", { class: "table" },
      el("thead", {}, el("tr", {}, ...["Annotator", "Batch", "Gold right", "Decide"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...batches.map((b, i) => el("tr", { "aria-current": i === 0 ? "true" : "false" },
        el("td", { text: b.annotator }), el("td", { text: `#${b.number} (${b.size} clips)` }),
        el("td", { text: `${b.gold_correct} / ${b.gold_total}` }),
        el("td", {},
          el("button", { type: "button", "aria-label": `Accept batch ${b.number} of ${b.annotator}` + (i === 0 ? " (key A)" : ""),
            onclick: () => decideBatch(b, "accept") }, i === 0 ? el("kbd", { text: "A" }) : null, " Accept"), " ",
          el("button", { type: "button", class: "discard", "aria-label": `Reject batch ${b.number} of ${b.annotator}` + (i === 0 ? " (key R twice)" : ""),
            onclick: () => decideBatch(b, "reject") }, i === 0 ? el("kbd", { text: "R" }) : null, " Reject")))))));
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: explain(err) }));
  }
}

async function decideBatch(batch, decision) {
  rejectArmed = null;
  try {
    await api("POST", `${base}batches/${batch.id}/decision/`, { decision, note: "" });
    showMessage(`Batch ${batch.number} of ${batch.annotator}: ${decision}ed.`, "info");
    await Promise.all([loadBatches(), loadQueue()]);
  } catch (err) {
    showMessage(explain(err));
  }
}

function batchKey(decision) {
  const batch = batches[0];
  if (!batch) {
    showMessage("No Improper batch is waiting.", "info");
    return;
  }
  if (decision === "reject" && rejectArmed !== batch.id) {
    rejectArmed = batch.id;
    showMessage(`Press R again to reject batch ${batch.number} of ${batch.annotator}: ` +
      "its votes will stop counting.", "info");
    return;
  }
  decideBatch(batch, decision);
}

const KEYS = { d: () => decideTask({ action: "discard" }), m: () => decideTask({ action: "more_votes", extra_votes: 1 }),
  j: () => { index = Math.min(index + 1, items.length - 1); render(); },
  k: () => { index = Math.max(index - 1, 0); render(); },
  a: () => batchKey("accept"), r: () => batchKey("reject") };
for (const a of ANSWERS) if (a.key !== "pass") KEYS[a.hotkey] = () => decideTask({ action: "label", label: a.key });

window.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (app.dataset.mode === "audit") return; // the blind audit has the keys (review_trust.js)
  const t = event.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
  const key = event.key.toLowerCase();
  if (!(key in KEYS)) return;
  event.preventDefault();
  event.stopPropagation();
  if (key !== "r") rejectArmed = null;
  if (!event.repeat) KEYS[key]();
}, { capture: true });

document.getElementById("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  index = 0;
  loadQueue();
});

loadQueue();
loadBatches();
