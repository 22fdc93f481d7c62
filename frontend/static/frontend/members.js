// The members page: who is in the campaign (members/), paused annotators with Reinstate
// (pauses/, annotators/{username}/reinstate/) and, for admins, adding people, creating
// annotator accounts in bulk (one-time passwords, shown once), changing roles and removing.
import { api, ApiError, el, explain, showMessage } from "./api.js";
import { confirmed, formatTime } from "./forms.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const ADMIN = app.dataset.role === "admin";
const ME = app.dataset.me;
const confirmEl = document.getElementById("confirm");
const ROLES = [["annotator", "Annotator"], ["reviewer", "Reviewer"], ["admin", "Admin"]];
let credentialsUrl = null;

function confirmNote(text) {
  confirmEl.hidden = !text;
  confirmEl.textContent = text || "";
  if (text) setTimeout(() => { if (confirmEl.textContent === text) confirmEl.hidden = true; }, 4000);
}

function cell(label, content, attrs = {}) {
  return el("td", { "data-label": label, ...attrs }, content);
}

function emptyRow(table, text, span) {
  table.tBodies[0].replaceChildren(el("tr", { class: "empty-row" }, el("td", { colspan: span, text })));
}

async function changeRole(username, role, select) {
  showMessage(null);
  try {
    await api("PATCH", `campaigns/${CAMPAIGN}/members/${encodeURIComponent(username)}/`, { role });
    confirmNote(`${username} is now ${role === "admin" ? "an admin" : "a " + role}.`);
    select.dataset.saved = role;
    if (username === ME && role !== "admin") window.location.reload();
  } catch (err) {
    select.value = select.dataset.saved;
    showMessage(`The role of ${username} was not changed: ${explain(err)}`);
  }
}

async function remove(username) {
  if (!confirmed(`Remove ${username} from this campaign? The clips they hold are released at ` +
    "once; their votes stay.")) return;
  showMessage(null);
  try {
    await api("DELETE", `campaigns/${CAMPAIGN}/members/${encodeURIComponent(username)}/`);
    confirmNote(`${username} was removed from the campaign.`);
    if (username === ME) window.location.assign("/");
    else loadMembers();
  } catch (err) {
    showMessage(`${username} was not removed: ${explain(err)}`);
  }
}

function memberRow(m) {
  const cells = [
    cell("Username", m.username),
    null,
    cell("Clips handed out", String(m.served), { class: "num" }),
    cell("Joined", formatTime(m.created_at)),
  ];
  if (ADMIN) {
    const select = el("select", { "aria-label": `Role of ${m.username}`, "data-saved": m.role });
    for (const [value, name] of ROLES) {
      select.append(el("option", { value, selected: value === m.role }, name));
    }
    select.addEventListener("change", () => changeRole(m.username, select.value, select));
    cells[1] = cell("Role", select);
    cells.push(cell("", el("button", {
      type: "button", class: "small danger", "aria-label": `Remove ${m.username}`,
      onclick: () => remove(m.username),
    }, "Remove"), { class: "actions" }));
  } else {
    cells[1] = cell("Role", m.role[0].toUpperCase() + m.role.slice(1));
  }
  return el("tr", { "data-username": m.username }, ...cells);
}

async function loadMembers() {
  const table = document.getElementById("members");
  try {
    const r = await api("GET", `campaigns/${CAMPAIGN}/members/`);
    if (!r.data.length) emptyRow(table, "No members yet.", 5);
    else table.tBodies[0].replaceChildren(...r.data.map(memberRow));
  } catch (err) {
    showMessage(explain(err));
  }
}

async function reinstate(username) {
  const note = window.prompt(`Reinstate ${username}? They get clips again. A note for the ` +
    "audit log (optional):", "");
  if (note === null) return;
  showMessage(null);
  try {
    await api("POST", `campaigns/${CAMPAIGN}/annotators/${encodeURIComponent(username)}/reinstate/`,
      { note });
    confirmNote(`${username} was reinstated and gets clips again.`);
    loadPauses();
  } catch (err) {
    showMessage(`${username} was not reinstated: ${explain(err)}`);
  }
}

async function loadPauses() {
  const table = document.getElementById("paused");
  try {
    const r = await api("GET", `campaigns/${CAMPAIGN}/pauses/`);
    // Newest first: an annotator's first row says whether they are paused now.
    const latest = new Map();
    for (const row of r.data) if (!latest.has(row.annotator)) latest.set(row.annotator, row);
    const paused = [...latest.values()].filter((row) => row.action === "pause");
    document.getElementById("none-paused").hidden = paused.length > 0;
    table.hidden = paused.length === 0;
    if (!paused.length) return;
    table.tBodies[0].replaceChildren(...paused.map((p) => el("tr", { "data-username": p.annotator },
      cell("Annotator", p.annotator),
      cell("Paused", formatTime(p.created_at)),
      cell("Why", p.reason || "—"),
      cell("", el("button", {
        type: "button", class: "small", "aria-label": `Reinstate ${p.annotator}`,
        onclick: () => reinstate(p.annotator),
      }, "Reinstate"), { class: "actions" }),
    )));
  } catch (err) {
    showMessage(explain(err));
  }
}

function csvField(value) {
  const text = String(value ?? "");
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function showCredentials(rows) {
  const box = document.getElementById("credentials");
  const table = document.getElementById("credentials-table");
  table.tBodies[0].replaceChildren(...rows.map((row) => el("tr", {},
    cell("Username", row.username),
    cell("Password", row.password || "—"),
    cell("Result", row.status === "created" ? "New account" : row.status === "added"
      ? "Existing account, added" : row.error || row.status),
  )));
  const lines = ["username,password,role"];
  for (const row of rows) {
    if (row.password) lines.push([row.username, row.password, row.role].map(csvField).join(","));
  }
  if (credentialsUrl) URL.revokeObjectURL(credentialsUrl);
  credentialsUrl = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
  const link = document.getElementById("credentials-csv");
  link.href = credentialsUrl;
  link.download = `credentials-campaign-${CAMPAIGN}.csv`;
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

function hideCredentials() {
  document.getElementById("credentials").hidden = true;
  document.getElementById("credentials-table").tBodies[0].replaceChildren();
  if (credentialsUrl) URL.revokeObjectURL(credentialsUrl);
  credentialsUrl = null;
}

// The 400 of an all-or-nothing bulk add lists every row; say which ones failed and why.
function rowErrors(err) {
  const rows = err instanceof ApiError && err.details && err.details.rows;
  if (!Array.isArray(rows)) return explain(err);
  const bad = rows.filter((r) => r.status === "error");
  // The API names its own switch for new accounts; on this page that is the form above.
  const text = (e) => String(e).replace(/\s*\(set create_missing to create one\)/, "");
  const missing = bad.some((r) => /create_missing/.test(r.error || ""));
  return "Nothing was changed. " + bad.map((r) => `${r.username || "(empty)"}: ${text(r.error)}`).join("; ") +
    (missing ? ". New people get an account under Create annotator accounts." : "");
}

async function createAccounts(event) {
  event.preventDefault();
  showMessage(null);
  const input = document.getElementById("cr-usernames");
  const errorEl = document.getElementById("cr-usernames-error");
  errorEl.hidden = true;
  input.removeAttribute("aria-invalid");
  const names = input.value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
  const fail = (text) => {
    errorEl.textContent = text;
    errorEl.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  };
  if (!names.length) return fail("Type at least one username.");
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const r = await api("POST", `campaigns/${CAMPAIGN}/members/`, {
      members: names.map((username) => ({ username, role: "annotator" })),
      create_missing: true,
    });
    input.value = "";
    const created = r.data.rows.filter((row) => row.status === "created").length;
    confirmNote(`${created} account${created === 1 ? "" : "s"} created.`);
    showCredentials(r.data.rows);
    loadMembers();
  } catch (err) {
    fail(rowErrors(err));
  } finally {
    button.disabled = false;
  }
}

async function addMember(event) {
  event.preventDefault();
  showMessage(null);
  const input = document.getElementById("ad-username");
  const errorEl = document.getElementById("ad-username-error");
  errorEl.hidden = true;
  input.removeAttribute("aria-invalid");
  const username = input.value.trim();
  const role = document.getElementById("ad-role").value;
  const fail = (text) => {
    errorEl.textContent = text;
    errorEl.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  };
  if (!username) return fail("Type the username of an existing account.");
  try {
    await api("POST", `campaigns/${CAMPAIGN}/members/`, { members: [{ username, role }] });
    input.value = "";
    confirmNote(`${username} was added as ${role === "admin" ? "an admin" : "a " + role}.`);
    loadMembers();
  } catch (err) {
    fail(rowErrors(err));
  }
}

if (ADMIN) {
  document.getElementById("create").addEventListener("submit", createAccounts);
  document.getElementById("add").addEventListener("submit", addMember);
  document.getElementById("credentials-hide").addEventListener("click", hideCredentials);
}
loadPauses();
loadMembers();
