// A campaign's settings: its rules (PATCH campaigns/{id}/, field errors from the 400's
// `details` next to each field) and its state (pause/, resume/, close/).
import { api, ApiError, explain, showMessage } from "./api.js";
import { confirmed, showFieldErrors } from "./forms.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const form = document.getElementById("rules");
const confirmEl = document.getElementById("confirm");
const FIELDS = [
  "name", "description", "aggregation", "votes_per_clip", "max_votes", "target_precision",
  "min_agreement", "ds_threshold", "gold_share", "gold_max_answers", "qualification_clips",
  "batch_size", "quality_confidence", "audit_share", "lease_seconds", "daily_quota",
];
// Scene weights (`scene_priority`, {scene id: weight}; 0 is not stored): one input per scene.
const SCENE_INPUTS = [...document.querySelectorAll("#cs-scene_priority input[data-scene]")];
const STATE_HELP = {
  active: "Clips are handed out to annotators.",
  paused: "No clips are handed out until you resume; annotators see that the campaign is paused. " +
    "Review and exports go on.",
  closed: "Closed for good: no clips are handed out any more. Review and exports go on.",
};
let saved = {}; // the campaign as the server last answered
// Shares such as 2/3 are shown to 4 decimals; a field left as shown is not sent back.
const shown = (v) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toFixed(4)) : v);

function confirmNote(text) {
  confirmEl.hidden = !text;
  confirmEl.textContent = text || "";
  if (text) setTimeout(() => { if (confirmEl.textContent === text) confirmEl.hidden = true; }, 4000);
}

function renderState(campaign) {
  const badge = document.getElementById("state");
  const label = campaign.state[0].toUpperCase() + campaign.state.slice(1);
  badge.textContent = label;
  badge.className = `state-badge state-${campaign.state}`;
  app.dataset.state = campaign.state;
  document.getElementById("state-help").textContent = STATE_HELP[campaign.state] || "";
  document.getElementById("pause").hidden = campaign.state !== "active";
  document.getElementById("resume").hidden = campaign.state !== "paused";
  document.getElementById("close").hidden = campaign.state === "closed";
  const navBadge = document.querySelector(".campaign-nav .state-badge");
  if (navBadge) navBadge.remove();
  if (campaign.state !== "active") {
    const name = document.querySelector(".campaign-nav .campaign-name");
    if (name) {
      const b = document.createElement("span");
      b.className = `state-badge state-${campaign.state}`;
      b.textContent = label;
      name.append(" ", b);
    }
  }
}

function fill(campaign) {
  saved = campaign;
  for (const f of FIELDS) form.elements[f].value = shown(campaign[f]) ?? "";
  for (const input of SCENE_INPUTS) input.value = campaign.scene_priority[input.dataset.scene] ?? 0;
  document.getElementById("title").textContent = campaign.name;
  renderState(campaign);
}

function changes() {
  const out = {};
  for (const f of FIELDS) {
    const input = form.elements[f];
    let value = input.value;
    if (input.dataset.kind === "int" || input.dataset.kind === "float") {
      // An empty or unreadable number goes to the API as it is, which names the field.
      value = value.trim() === "" ? null : Number(value);
    }
    if (value !== shown(saved[f])) out[f] = value;
  }
  const weights = {};
  for (const input of SCENE_INPUTS) {
    // An unreadable weight goes as it is: the API names the field and the scene.
    const value = input.value.trim() === "" ? 0 : Number(input.value);
    // Sent by scene name, so an error names the scene ("School: a whole number ...").
    if (value !== 0) weights[input.dataset.name] = Number.isFinite(value) ? value : input.value;
  }
  const before = {};
  for (const input of SCENE_INPUTS) {
    const v = (saved.scene_priority || {})[input.dataset.scene];
    if (v) before[input.dataset.name] = v;
  }
  const same = Object.keys(weights).length === Object.keys(before).length &&
    Object.entries(weights).every(([k, v]) => before[k] === v);
  if (!same) out.scene_priority = weights;
  return out;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage(null);
  showFieldErrors(form, "cs-", {});
  document.getElementById("saved").textContent = "";
  const formError = document.getElementById("form-error");
  formError.hidden = true;
  const body = changes();
  if (Object.keys(body).length === 0) {
    document.getElementById("saved").textContent = "Nothing to save: no field was changed.";
    return;
  }
  try {
    const r = await api("PATCH", `campaigns/${CAMPAIGN}/`, body);
    fill(r.data);
    document.getElementById("saved").textContent = "Saved.";
    confirmNote("Changes saved.");
  } catch (err) {
    if (err instanceof ApiError && err.status === 400 && showFieldErrors(form, "cs-", err.details)) {
      // The weight in error, of all the scenes' inputs.
      for (const input of SCENE_INPUTS) {
        const v = Number(input.value);
        if (!Number.isInteger(v) || v < -100 || v > 100) input.setAttribute("aria-invalid", "true");
      }
      formError.textContent = "Not saved: correct the fields marked in red.";
      formError.hidden = false;
    } else {
      showMessage("Not saved: " + explain(err));
    }
  }
});

async function changeState(action, question, done) {
  if (question && !confirmed(question)) return;
  showMessage(null);
  try {
    const r = await api("POST", `campaigns/${CAMPAIGN}/${action}/`);
    renderState(r.data);
    saved = r.data;
    confirmNote(done);
  } catch (err) {
    showMessage(explain(err));
  }
}

document.getElementById("pause").addEventListener("click", () => changeState(
  "pause",
  "Pause this campaign? Annotators get no new clips until you resume it.",
  "Campaign paused: no clips are handed out.",
));
document.getElementById("resume").addEventListener("click", () => changeState(
  "resume", "Resume this campaign? Annotators get clips again.", "Campaign resumed.",
));
document.getElementById("close").addEventListener("click", () => changeState(
  "close",
  "Close this campaign for good? No clip will be handed out again and it cannot be reopened. " +
    "Review and exports go on.",
  "Campaign closed.",
));

async function load() {
  try {
    const r = await api("GET", `campaigns/${CAMPAIGN}/`);
    fill(r.data);
    if (new URLSearchParams(location.search).has("created")) {
      document.getElementById("next-steps").hidden = false;
      history.replaceState(null, "", location.pathname);
    }
  } catch (err) {
    showMessage(explain(err));
  }
}

load();
