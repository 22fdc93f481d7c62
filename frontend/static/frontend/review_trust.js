// The review page's trust sections (issue 14): paused annotators with Reinstate (pauses/,
// annotators/{username}/reinstate/), the blind audit of trusted clips (audit-queue/) with the
// measured precision, and the collusion and fatigue signals (signals/) with their evidence.
// The disputed-clip queue and the Improper batches are review.js's.
import { ANSWERS, api, el, explain, showMessage } from "./api.js";
import { formatTime } from "./forms.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const base = `campaigns/${CAMPAIGN}/`;
const NAMES = Object.fromEntries(ANSWERS.map((a) => [a.key, a.name]));
const CLASSES = ANSWERS.filter((a) => a.key !== "pass"); // the audit asks for a class
const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`);
const pts = (x) => (x === null || x === undefined ? "?" : `${Math.round(x * 100)} points`);
const summary = { paused: null, audit: null, signals: null };
let confirmTimer = null;

function confirm(text) {
  const box = document.getElementById("confirm");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(confirmTimer);
  confirmTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

// One line at the top: what needs attention further down, with links to it.
function renderSummary() {
  const items = [];
  const count = (n, none, one, many) => (n === 0 ? none : n === 1 ? one : `${n} ${many}`);
  if (summary.paused !== null) {
    items.push(el("li", {}, el("a", { href: "#paused-section", class: summary.paused ? "alert" : null },
      count(summary.paused, "No annotator paused", "1 paused annotator", "paused annotators"))));
  }
  if (summary.audit !== null) {
    items.push(el("li", {}, el("a", { href: "#audit-section" },
      count(summary.audit, "No clip to audit", "1 trusted clip to audit", "trusted clips to audit"))));
  }
  if (summary.signals !== null) {
    items.push(el("li", {}, el("a", { href: "#signals-section", class: summary.signals ? "alert" : null },
      count(summary.signals, "No collusion or fatigue signal", "1 collusion or fatigue signal",
        "collusion or fatigue signals"))));
  }
  document.getElementById("trust-summary").replaceChildren(...items);
}

// --- paused annotators ------------------------------------------------------------------------

async function loadPaused() {
  const table = document.getElementById("paused");
  try {
    const r = await api("GET", base + "pauses/");
    // Newest first: an annotator's first row says whether they are paused now.
    const latest = new Map();
    for (const row of r.data) if (!latest.has(row.annotator)) latest.set(row.annotator, row);
    const paused = [...latest.values()].filter((row) => row.action === "pause");
    summary.paused = paused.length;
    renderSummary();
    document.getElementById("none-paused").hidden = paused.length > 0;
    table.hidden = paused.length === 0;
    table.tBodies[0].replaceChildren(...paused.map((p) => el("tr", { "data-username": p.annotator },
      el("td", { "data-label": "Annotator", text: p.annotator }),
      el("td", { "data-label": "Paused since", text: formatTime(p.created_at) }),
      el("td", { "data-label": "Reason", text: p.reason || "—" }),
      el("td", { "data-label": "Decide", class: "actions" },
        el("button", { type: "button", "aria-label": `Reinstate ${p.annotator}`,
          onclick: (e) => reinstate(p.annotator, e.currentTarget) }, "Reinstate")))));
  } catch (err) {
    document.getElementById("none-paused").hidden = true;
    table.hidden = true;
    showMessage(`Paused annotators could not be loaded: ${explain(err)}`);
  }
}

async function reinstate(username, button) {
  button.disabled = true;
  showMessage(null);
  try {
    await api("POST", `${base}annotators/${encodeURIComponent(username)}/reinstate/`,
      { note: "Reinstated from the review page." });
    confirm(`${username} was reinstated and gets clips again.`);
  } catch (err) {
    showMessage(`${username} was not reinstated: ${explain(err)}`);
  }
  await loadPaused();
}

// --- the blind audit --------------------------------------------------------------------------

let audit = { clips: [], precision: null };
let auditing = false;
let auditBusy = false;
const auditVideo = document.getElementById("audit-video");

function interval(p) {
  return p.interval_95 ? `${pct(p.interval_95[0])} to ${pct(p.interval_95[1])}` : "—";
}

function precisionLine(p) {
  if (!p.audited && !p.sampled) {
    return el("p", { class: "precision" },
      `No trusted clip is in the audit sample yet: ${pct(p.share)} of the clips are sampled as ` +
      "they become trusted.");
  }
  if (!p.audited) {
    return el("p", { class: "precision" },
      `No trusted clip has been audited yet: ${p.sampled} of them are in the sample ` +
      `(${pct(p.share)} of the trusted clips).`);
  }
  return el("p", { class: "precision" }, "Measured precision: ", el("strong", { text: pct(p.precision) }),
    ` (95% interval ${interval(p)}): ${p.right} of ${p.audited} audited trusted labels were right.`);
}

function waiting() {
  const p = audit.precision;
  return p ? Math.max(audit.clips.length, p.sampled - p.audited) : audit.clips.length;
}

function renderAuditSection() {
  const p = audit.precision;
  const box = document.getElementById("precision");
  const rows = p ? (p.per_scenario || []).filter((r) => r.audited) : [];
  box.replaceChildren(...[
    precisionLine(p),
    rows.length ? el("div", { class: "table-scroll" }, el("table", { class: "table stack", id: "precision-table" },
      el("thead", {}, el("tr", {}, ...["Scenario", "Audited", "Right", "Precision", "95% interval"]
        .map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows.map((r) => el("tr", {},
        el("td", { "data-label": "Scenario", text: r.name }),
        el("td", { "data-label": "Audited", text: String(r.audited) }),
        el("td", { "data-label": "Right", text: String(r.right) }),
        el("td", { "data-label": "Precision", text: pct(r.precision) }),
        el("td", { "data-label": "95% interval", text: interval(r) })))))) : null,
    audit.clips.length || !p.sampled ? null : el("p", { class: "muted", text: "Every sampled clip has been audited." }),
  ].filter(Boolean));
  const start = document.getElementById("audit-start");
  const n = waiting();
  start.hidden = audit.clips.length === 0 || auditing;
  start.textContent = `Start the blind audit (${n} ${n === 1 ? "clip" : "clips"} waiting)`;
  summary.audit = audit.clips.length ? n : 0;
  renderSummary();
}

async function loadAudit() {
  try {
    const r = await api("GET", base + "audit-queue/");
    audit = r.data;
    renderAuditSection();
    if (auditing) renderAuditItem();
  } catch (err) {
    document.getElementById("precision").replaceChildren(
      el("p", { class: "error", text: `The blind audit could not be loaded: ${explain(err)}` }));
  }
}

function renderAuditItem() {
  const item = audit.clips[0];
  const live = document.getElementById("audit-precision-live");
  live.replaceChildren(...precisionLine(audit.precision).childNodes);
  const buttons = document.getElementById("audit-answers");
  app.dataset.auditTask = item ? String(item.task) : "";
  if (!item) {
    document.getElementById("audit-title").textContent = "Blind audit: nothing left to audit. Thank you!";
    buttons.replaceChildren();
    auditVideo.hidden = true;
    auditVideo.pause();
    auditVideo.removeAttribute("src");
    auditVideo.removeAttribute("poster");
    delete auditVideo.dataset.task;
    auditVideo.load();
    return;
  }
  const n = waiting();
  document.getElementById("audit-title").textContent =
    `Blind audit · ${n} trusted ${n === 1 ? "clip" : "clips"} waiting`;
  auditVideo.hidden = false;
  if (auditVideo.dataset.task !== String(item.task)) {
    auditVideo.dataset.task = String(item.task);
    auditVideo.poster = item.clip.poster_url || "";
    auditVideo.src = item.clip.video_url;
    auditVideo.play().catch(() => {});
  }
  if (!buttons.children.length) {
    buttons.replaceChildren(...CLASSES.map((a) => el("button", {
      type: "button", "aria-label": `${a.name} (key ${a.hotkey})`, "data-label": a.key,
      onclick: (e) => { e.currentTarget.blur(); answerAudit(a.key); },
    }, el("kbd", { text: a.hotkey }), " " + a.name)));
  }
}

function startAudit() {
  auditing = true;
  app.dataset.mode = "audit";
  const reviewVideo = document.getElementById("video");
  reviewVideo.pause();
  for (const id of ["filters", "review-main"]) {
    const node = id === "review-main" ? document.querySelector(".review-main") : document.getElementById(id);
    node.hidden = true;
  }
  document.getElementById("audit-mode").hidden = false;
  document.getElementById("audit-start").hidden = true;
  renderAuditItem();
  window.scrollTo(0, 0);
}

function stopAudit() {
  auditing = false;
  app.dataset.mode = "review";
  auditVideo.pause();
  document.getElementById("audit-mode").hidden = true;
  document.getElementById("filters").hidden = false;
  document.querySelector(".review-main").hidden = false;
  renderAuditSection();
  const reviewVideo = document.getElementById("video");
  if (reviewVideo.getAttribute("src")) reviewVideo.play().catch(() => {});
  window.scrollTo(0, 0);
}

async function answerAudit(label) {
  const item = audit.clips[0];
  if (!item || auditBusy) return;
  auditBusy = true;
  showMessage(null);
  try {
    await api("POST", base + "audit-queue/", { task: item.task, label });
    confirm(`Saved: your answer ${NAMES[label]}. Next clip.`);
  } catch (err) {
    showMessage(explain(err));
  } finally {
    auditBusy = false;
  }
  await loadAudit();
}

document.getElementById("audit-start").addEventListener("click", startAudit);
document.getElementById("audit-stop").addEventListener("click", stopAudit);

window.addEventListener("keydown", (event) => {
  if (!auditing || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  const answer = CLASSES.find((a) => a.hotkey === key);
  if (!answer && key !== "Escape") return;
  event.preventDefault();
  event.stopPropagation();
  if (event.repeat) return;
  if (key === "Escape") stopAudit();
  else answerAudit(answer.key);
}, { capture: true });

// --- collusion and fatigue --------------------------------------------------------------------

async function loadSignals() {
  const box = document.getElementById("signals");
  try {
    const { data } = await api("GET", base + "signals/");
    if (!data.computed_at) {
      summary.signals = 0;
      box.replaceChildren(el("p", { class: "muted", text: "Not computed yet: the signals come with " +
        "the campaign's statistics, which the server refreshes every few minutes." }));
      renderSummary();
      return;
    }
    const rules = data.rules || {};
    const pairs = data.collusion.filter((p) => p.flagged);
    const tired = data.fatigue.filter((r) => r.flagged);
    summary.signals = pairs.length + tired.length;
    renderSummary();
    const checked = `Computed ${formatTime(data.computed_at)} from ${data.collusion.length} ` +
      `pair(s) and ${data.fatigue.length} annotator(s) with enough votes to compare.`;
    box.replaceChildren(...[
      el("p", { class: "muted", text: checked }),
      el("h3", { text: "Pairs who agree too often" }),
      pairs.length ? el("div", { class: "table-scroll" }, el("table", { class: "table stack", id: "signals-collusion" },
        el("thead", {}, el("tr", {}, ...["Annotators", "Shared clips", "Same answer", "Expected if independent", "z"]
          .map((h) => el("th", { text: h })))),
        el("tbody", {}, ...pairs.map((p) => el("tr", { "data-pair": p.annotators.join(",") },
          el("td", { "data-label": "Annotators" }, el("span", {}, el("span", { class: "signal-flag", text: "flagged" }), " " + p.annotators.join(" and "))),
          el("td", { "data-label": "Shared clips", text: String(p.shared_clips) }),
          el("td", { "data-label": "Same answer", text: `${p.agreed} (${pct(p.agreed / p.shared_clips)})` }),
          el("td", { "data-label": "Expected if independent", text: `${p.expected.toFixed(1)} (${pct(p.expected / p.shared_clips)})` }),
          el("td", { "data-label": "z", text: p.z.toFixed(1) }))))))
        : el("p", { class: "muted", text: "No pair agrees more than their accuracies explain." }),
      el("p", { class: "muted", text: `Flagged: at least ${rules.min_overlap ?? "?"} shared clips, ` +
        `agreement at least ${pts(rules.collusion_excess)} above what is expected of two ` +
        `independent annotators this accurate, and z (the excess in standard errors) at least ${rules.collusion_z ?? "?"}.` }),
      el("h3", { text: "Annotators whose accuracy fell" }),
      tired.length ? el("div", { class: "table-scroll" }, el("table", { class: "table stack", id: "signals-fatigue" },
        el("thead", {}, el("tr", {}, ...["Annotator", "Checked votes", "Right, first half", "Right, second half", "By quarter", "z"]
          .map((h) => el("th", { text: h })))),
        el("tbody", {}, ...tired.map((r) => el("tr", { "data-annotator": r.annotator },
          el("td", { "data-label": "Annotator" }, el("span", {}, el("span", { class: "signal-flag", text: "flagged" }), " " + r.annotator)),
          el("td", { "data-label": "Checked votes", text: String(r.checked_votes) }),
          el("td", { "data-label": "Right, first half", text: pct(r.accuracy_first_half) }),
          el("td", { "data-label": "Right, second half", text: pct(r.accuracy_second_half) }),
          el("td", { "data-label": "By quarter", text: r.accuracy_by_quarter.map(pct).join(" → ") }),
          el("td", { "data-label": "z", text: r.z.toFixed(1) }))))))
        : el("p", { class: "muted", text: "No annotator's accuracy fell notably." }),
      el("p", { class: "muted", text: `Flagged: at least ${rules.fatigue_min ?? "?"} votes checked ` +
        "against gold or settled labels, accuracy at least " +
        `${pts(rules.fatigue_drop)} lower in the second half than in the first, and z at least ${rules.fatigue_z ?? "?"}.` }),
    ].filter(Boolean));
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: `The signals could not be loaded: ${explain(err)}` }));
  }
}

app.dataset.mode = "review";
loadPaused();
loadAudit();
loadSignals();
