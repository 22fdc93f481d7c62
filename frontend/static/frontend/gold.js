// The gold page: import a CSV (POST gold/import/ as text/csv, optionally `partial=1`) and show
// the result of every row; the export is a plain link to gold/export/.
import { ANSWERS, el, explain, showMessage, ApiError } from "./api.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const CSRF = app.dataset.csrf;
const form = document.getElementById("import");
const fileInput = document.getElementById("gi-file");
const fileError = document.getElementById("gi-file-error");
const summary = document.getElementById("summary");
const results = document.getElementById("results");
const NAMES = Object.fromEntries(ANSWERS.map((a) => [a.key, a.name]));

// api.js speaks JSON; this one request sends the file's text as CSV.
async function postCsv(text, partial) {
  let response;
  try {
    response = await fetch(`/api/v1/campaigns/${CAMPAIGN}/gold/import/${partial ? "?partial=1" : ""}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "text/csv", "X-CSRFToken": CSRF },
      body: text,
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", "The server cannot be reached.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const e = data && data.error;
    if (e) throw new ApiError(response.status, e.code, e.message, e.details);
    throw new ApiError(response.status, "http_" + response.status, `Import failed (${response.status}).`);
  }
  return data;
}

const RESULT = { gold: "Gold now", unchanged: "Already gold with this label", error: "Error" };

function showRows(rows) {
  results.tBodies[0].replaceChildren(...rows.map((r) => el("tr", { class: `result-${r.status}` },
    el("td", { "data-label": "Line", class: "num" }, String(r.row)),
    el("td", { "data-label": "Clip" }, r.clip || "—"),
    el("td", { "data-label": "Label" }, NAMES[r.label] || r.label || "—"),
    el("td", { "data-label": "Result", class: r.status === "error" ? "error" : "ok" },
      r.status === "error" ? `${r.field ? r.field + ": " : ""}${r.error}` : RESULT[r.status] || r.status),
  )));
  results.hidden = !rows.length;
}

function say(text, ok) {
  summary.textContent = text;
  summary.className = ok ? "message info" : "message";
  summary.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage(null);
  fileError.hidden = true;
  fileInput.removeAttribute("aria-invalid");
  summary.hidden = true;
  const file = fileInput.files[0];
  if (!file) {
    fileError.textContent = "Choose a CSV file first.";
    fileError.hidden = false;
    fileInput.setAttribute("aria-invalid", "true");
    return;
  }
  const partial = document.getElementById("gi-partial").checked;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const data = await postCsv(await file.text(), partial);
    const count = (s) => data.rows.filter((r) => r.status === s).length;
    const errors = count("error");
    const parts = [`${count("gold")} clip(s) made gold`];
    if (count("unchanged")) parts.push(`${count("unchanged")} already gold with that label`);
    if (errors) parts.push(`${errors} row(s) with errors skipped`);
    say(parts.join(", ") + ".", errors === 0);
    showRows(data.rows);
  } catch (err) {
    const rows = err instanceof ApiError && err.details && err.details.rows;
    if (Array.isArray(rows)) {
      const bad = rows.filter((r) => r.status === "error").length;
      say(`Nothing was imported: ${bad} of ${rows.length} row(s) have errors (listed below). ` +
        "Fix them, or tick \"Apply the valid rows\".", false);
      showRows(rows);
    } else {
      say("Nothing was imported: " + explain(err), false);
      results.hidden = true;
    }
  } finally {
    button.disabled = false;
  }
});
