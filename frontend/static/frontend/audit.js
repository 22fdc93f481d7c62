// The audit log: GET campaigns/{id}/audit/, newest first, older pages by `before`.
import { ANSWERS, api, el, explain, showMessage } from "./api.js";
import { formatTime } from "./forms.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const table = document.getElementById("audit");
const moreButton = document.getElementById("more");
const NAMES = Object.fromEntries(ANSWERS.map((a) => [a.key, a.name]));
const name = (key) => (key ? NAMES[key] || key : "none");
let nextBefore = null;
let shown = 0;

const WHAT = {
  campaign_created: "Campaign created",
  campaign_edited: "Rules changed",
  campaign_paused: "Campaign paused",
  campaign_resumed: "Campaign resumed",
  campaign_closed: "Campaign closed",
  members_added: "Members added",
  member_role_changed: "Role changed",
  member_removed: "Member removed",
  gold_set: "Gold label set",
  gold_retired: "Gold clip retired",
  gold_imported: "Gold labels imported",
  review_decision: "Review decision",
  batch_decision: "Batch decision",
};

function value(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number" && !Number.isInteger(v)) return String(Number(v.toFixed(4)));
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// One readable line per entry; anything not known is shown as its fields.
function describe(action, d) {
  switch (action) {
    case "campaign_created":
      return Object.entries(d.rules || {}).filter(([k]) => k !== "description")
        .map(([k, v]) => `${k}: ${value(v)}`).join("; ");
    case "campaign_paused":
    case "campaign_resumed":
    case "campaign_closed":
      return d.before && d.after ? `${d.before} → ${d.after}` : "";
    case "campaign_edited":
      return Object.keys(d.after || {}).map((f) => `${f}: ${value(d.before?.[f])} → ${value(d.after[f])}`).join("; ");
    case "members_added":
      return (d.members || []).map((m) => `${m.username} (${m.role}${m.created ? ", new account" : ""})`).join(", ");
    case "member_role_changed":
      return `${d.username}: ${d.before} → ${d.after}`;
    case "member_removed":
      return `${d.username} (${d.role}); ${d.leases_released} open clip(s) released`;
    case "gold_set":
    case "gold_retired":
      return `task ${d.task} (clip ${d.clip}): ${name(d.previous)} → ${name(d.label)}`;
    case "gold_imported":
      return `${d.count} clip(s): ` + (d.clips || []).slice(0, 5)
        .map((c) => `clip ${c.clip} ${name(c.label)}`).join(", ") + (d.count > 5 ? ", …" : "");
    default:
      return Object.entries(d || {}).filter(([k]) => k !== "rules")
        .map(([k, v]) => `${k}: ${value(v)}`).join("; ");
  }
}

function row(entry) {
  const details = describe(entry.action, entry.details || {});
  return el("tr", { "data-action": entry.action },
    el("td", { "data-label": "When" }, formatTime(entry.at)),
    el("td", { "data-label": "Who" }, entry.actor || "system"),
    el("td", { "data-label": "What" }, WHAT[entry.action] || entry.action),
    el("td", { "data-label": "Details", class: "audit-details" }, details || "—"),
  );
}

async function load() {
  showMessage(null);
  const params = new URLSearchParams();
  if (nextBefore !== null) params.set("before", nextBefore);
  moreButton.disabled = true;
  try {
    const r = await api("GET", `campaigns/${CAMPAIGN}/audit/?${params}`);
    if (!shown) table.tBodies[0].replaceChildren();
    table.tBodies[0].append(...r.data.items.map(row));
    shown += r.data.items.length;
    if (!shown) {
      table.tBodies[0].replaceChildren(el("tr", { class: "empty-row" },
        el("td", { colspan: 4, text: "Nothing has been changed yet." })));
    }
    nextBefore = r.data.next_before;
    moreButton.hidden = nextBefore === null;
  } catch (err) {
    showMessage(explain(err));
  } finally {
    moreButton.disabled = false;
  }
}

moreButton.addEventListener("click", load);
load();
