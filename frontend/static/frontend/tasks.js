// The tasks page: GET campaigns/{id}/tasks/ with the API's filters, a page at a time
// ("Load more" passes `next_after` as `after`); each row links to the clip's history and a
// gold clip can be retired (DELETE tasks/{id}/gold/).
import { ANSWERS, api, ApiError, el, explain, showMessage } from "./api.js";
import { confirmed } from "./forms.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const form = document.getElementById("filters");
const table = document.getElementById("tasks");
const moreButton = document.getElementById("more");
const countEl = document.getElementById("count");
const filterError = document.getElementById("filter-error");
const FILTERS = ["status", "scenario", "scene", "label", "gold", "clip", "agreement_min",
  "agreement_max"];
const NAMES = Object.fromEntries(ANSWERS.map((a) => [a.key, a.name]));
let nextAfter = null;
let shown = 0;

for (const a of ANSWERS) {
  if (a.key !== "pass") form.elements.label.append(el("option", { value: a.key }, a.name));
}

function query() {
  const params = new URLSearchParams();
  for (const f of FILTERS) {
    const value = form.elements[f].value.trim();
    if (value !== "") params.set(f, value);
  }
  return params;
}

function cell(label, content, attrs = {}) {
  return el("td", { "data-label": label, ...attrs }, content);
}

async function retire(task, row) {
  if (!confirmed(`Retire clip ${task.clip_name} from the gold set? It becomes an ordinary clip ` +
    "and its gold label is dropped.")) return;
  showMessage(null);
  try {
    await api("DELETE", `campaigns/${CAMPAIGN}/tasks/${task.id}/gold/`);
    row.querySelector("[data-label=Gold]").textContent = "—";
    row.querySelector(".retire").remove();
    const note = document.getElementById("confirm");
    note.textContent = `${task.clip_name} is no longer gold.`;
    note.hidden = false;
    setTimeout(() => { note.hidden = true; }, 4000);
  } catch (err) {
    showMessage(explain(err));
  }
}

function row(task) {
  const history = `/campaigns/${CAMPAIGN}/tasks/${task.id}/`;
  const tr = el("tr", { "data-task": task.id },
    cell("Task", el("a", { href: history, "aria-label": `History of task ${task.id}` }, `#${task.id}`)),
    cell("Clip", `${task.clip_name} (${task.clip})`),
    cell("Scene", task.scene),
    cell("Status", task.status),
    cell("Label", task.label ? NAMES[task.label] || task.label : "—"),
    cell("Votes", `${task.votes} / ${task.votes_needed}`, { class: "num" }),
    cell("Agreement", task.votes ? `${Math.round(task.agreement * 100)}%` : "—", { class: "num" }),
    cell("Gold", task.gold ? NAMES[task.gold_label] || "gold" : "—"),
    cell("", null, { class: "actions" }),
  );
  const actions = tr.lastChild;
  actions.append(el("a", { href: history }, "History"));
  if (task.gold) {
    actions.append(" ", el("button", {
      type: "button", class: "small secondary retire", "aria-label": `Retire gold clip ${task.clip_name}`,
      onclick: () => retire(task, tr),
    }, "Retire gold"));
  }
  return tr;
}

async function load(reset) {
  showMessage(null);
  filterError.hidden = true;
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const params = query();
  if (!reset && nextAfter !== null) params.set("after", nextAfter);
  moreButton.disabled = true;
  try {
    const r = await api("GET", `campaigns/${CAMPAIGN}/tasks/?${params}`);
    const body = table.tBodies[0];
    if (reset) {
      body.replaceChildren();
      shown = 0;
    }
    body.append(...r.data.items.map(row));
    shown += r.data.items.length;
    if (!shown) {
      body.replaceChildren(el("tr", { class: "empty-row" },
        el("td", { colspan: 9, text: "No clip matches these filters." })));
    }
    nextAfter = r.data.next_after;
    moreButton.hidden = nextAfter === null;
    countEl.textContent = shown ? `${shown} clip${shown === 1 ? "" : "s"} shown` +
      (nextAfter === null ? " (all that match)" : "") : "";
    app.dataset.loaded = String(shown);
  } catch (err) {
    if (err instanceof ApiError && err.status === 400 && err.details) {
      const names = Object.keys(err.details);
      for (const n of names) {
        const input = document.getElementById("f-" + n);
        if (input) input.setAttribute("aria-invalid", "true");
      }
      filterError.textContent = "Check the filters: " + explain(err);
      filterError.hidden = false;
    } else {
      showMessage(explain(err));
    }
  } finally {
    moreButton.disabled = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  // Filters live in the address too, so a filtered list can be bookmarked or shared.
  history.replaceState(null, "", `${location.pathname}?${query()}`);
  load(true);
});
form.addEventListener("reset", () => {
  setTimeout(() => {
    history.replaceState(null, "", location.pathname);
    load(true);
  });
});
moreButton.addEventListener("click", () => load(false));

const initial = new URLSearchParams(location.search);
for (const f of FILTERS) if (initial.has(f)) form.elements[f].value = initial.get(f);
load(true);
