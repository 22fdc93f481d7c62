// Editing a campaign's guidelines: PATCH campaigns/{id}/ with `guidelines` and
// `guideline_examples`; the preview is the server's own rendering (GET campaigns/{id}/guidelines/),
// so it is exactly what annotators will see.
import { ANSWERS, ApiError, api, el, explain, showMessage } from "./api.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const CLASSES = ANSWERS.filter((a) => a.key !== "pass");
const markdown = document.getElementById("markdown");
const preview = document.getElementById("preview");
const saved = document.getElementById("saved");
const inputs = {};

document.getElementById("examples").replaceChildren(...CLASSES.map((c) => {
  inputs[c.key] = el("input", { id: `ex-${c.key}`, name: c.key, inputmode: "numeric", placeholder: "e.g. 12, 40" });
  return el("div", {}, el("label", { for: `ex-${c.key}`, text: c.name }), inputs[c.key]);
}));

async function loadPreview() {
  const { data } = await api("GET", `campaigns/${CAMPAIGN}/guidelines/`);
  preview.innerHTML = data.html || "<p class=\"muted\">No guidelines yet.</p>";
}

async function load() {
  try {
    const { data } = await api("GET", `campaigns/${CAMPAIGN}/`);
    markdown.value = data.guidelines;
    for (const [key, ids] of Object.entries(data.guideline_examples || {})) {
      if (inputs[key]) inputs[key].value = ids.join(", ");
    }
    await loadPreview();
  } catch (err) {
    showMessage(explain(err));
  }
}

function examples() {
  const out = {};
  for (const [key, input] of Object.entries(inputs)) {
    const ids = input.value.split(/[\s,;]+/).filter(Boolean);
    const bad = ids.find((x) => !/^\d+$/.test(x));
    if (bad) throw new Error(`${key}: "${bad}" is not a clip id.`);
    if (ids.length) out[key] = ids.map(Number);
  }
  return out;
}

document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage(null);
  saved.textContent = "";
  try {
    await api("PATCH", `campaigns/${CAMPAIGN}/`, {
      guidelines: markdown.value, guideline_examples: examples(),
    });
    await loadPreview();
    saved.textContent = "Saved.";
  } catch (err) {
    // The API's message names the field already.
    showMessage(err instanceof ApiError && err.status === 400 ? err.message : explain(err));
  }
});

load();
