// One clip's history: GET review/tasks/{id}/ (votes, who voted what, counts) and
// review/tasks/{id}/decisions/ (every review decision, with the state before and after).
import { ANSWERS, api, el, explain, showMessage } from "./api.js";
import { formatTime } from "./forms.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const TASK = app.dataset.task;
const NAMES = Object.fromEntries(ANSWERS.map((a) => [a.key, a.name]));
const name = (key) => (key ? NAMES[key] || key : "—");

function cell(label, content, attrs = {}) {
  return el("td", { "data-label": label, ...attrs }, content);
}

function empty(table, text, span) {
  table.tBodies[0].replaceChildren(el("tr", { class: "empty-row" }, el("td", { colspan: span, text })));
}

function state(s) {
  if (!s || typeof s !== "object") return "—";
  return `${s.status || "?"}${s.label ? " · " + name(s.label) : ""}`;
}

async function load() {
  try {
    const [item, decisions] = await Promise.all([
      api("GET", `campaigns/${CAMPAIGN}/review/tasks/${TASK}/`),
      api("GET", `campaigns/${CAMPAIGN}/review/tasks/${TASK}/decisions/`),
    ]);
    const t = item.data;
    document.getElementById("title").textContent = `Task ${t.task} · ${t.clip.name}`;
    const video = document.getElementById("video");
    video.poster = t.clip.poster_url || "";
    video.src = t.clip.video_url || "";
    const counts = Object.entries(t.counts || {}).filter(([, n]) => n > 0)
      .map(([k, n]) => `${name(k)} ${n}`).join(", ");
    const facts = [
      ["Status", t.status], ["Label", name(t.label)],
      ["Votes", `${t.vote_count} of ${t.votes_needed} needed`],
      ["Agreement", t.vote_count ? `${Math.round(t.agreement * 100)}%` : "—"],
      ["Counts", counts || "—"], ["Gold / reference", name(t.reference_label)],
      ["Scene", `${t.scene.name} (${t.scenario.name})`], ["Clip id", String(t.clip.id)],
    ];
    document.getElementById("summary").replaceChildren(
      ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
    );
    const votes = document.getElementById("votes");
    if (!t.votes.length) empty(votes, "No votes yet.", 4);
    else {
      votes.tBodies[0].replaceChildren(...t.votes.map((v) => el("tr", { class: v.valid ? "" : "invalid" },
        cell("When", formatTime(v.created_at)), cell("Annotator", v.annotator),
        cell("Answer", v.valid ? name(v.answer) : el("s", {}, name(v.answer))),
        cell("Time", v.time_ms === null ? "—" : `${(v.time_ms / 1000).toFixed(1)} s`, { class: "num" }),
      )));
    }
    const table = document.getElementById("decisions");
    if (!decisions.data.items.length) empty(table, "No review decision yet.", 5);
    else {
      table.tBodies[0].replaceChildren(...decisions.data.items.map((d) => el("tr", {},
        cell("When", formatTime(d.created_at)), cell("Reviewer", d.reviewer),
        cell("Decision", d.action + (d.label ? ` · ${name(d.label)}` : "") +
          (d.extra_votes ? ` · ${d.extra_votes} more vote(s)` : "")),
        cell("Before → after", `${state(d.before)} → ${state(d.after)}`),
        cell("Note", d.note || "—"),
      )));
    }
  } catch (err) {
    showMessage(explain(err));
  }
}

load();
