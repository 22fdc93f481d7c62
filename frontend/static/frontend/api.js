// The one way the pages talk to the server: the documented REST API under /api/v1/, with the
// session cookie and the CSRF token (DRF's SessionAuthentication checks it on writes).
const app = document.getElementById("app");
const CSRF = app ? app.dataset.csrf : "";

export class ApiError extends Error {
  // status 0 = the server could not be reached (network down, server stopped).
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  get retryable() {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

export async function api(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": CSRF },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch("/api/v1/" + path, init);
  } catch (err) {
    throw new ApiError(0, "unreachable", "The server cannot be reached.");
  }
  if (response.status === 204) return { status: 204, data: null };
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const e = data && data.error;
    if (e) throw new ApiError(response.status, e.code, e.message, e.details);
    if (response.status >= 500) {
      throw new ApiError(response.status, "server_error", "The server had a problem; retrying.");
    }
    throw new ApiError(response.status, "http_" + response.status, `Request failed (${response.status}).`);
  }
  return { status: response.status, data };
}

// Show an API error (or any message) in the page's alert line; null hides it.
export function showMessage(text, kind = "error") {
  const el = document.getElementById("message");
  if (!el) return;
  el.hidden = !text;
  el.textContent = text || "";
  el.classList.add("message");
  el.classList.toggle("info", kind === "info");
}

export function explain(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return "Your session has ended. Log in again, then reload this page.";
    const details = err.details && typeof err.details === "object"
      ? " " + Object.entries(err.details).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ")
      : "";
    return err.message + details;
  }
  return String(err && err.message ? err.message : err);
}

// The seven FERV39k classes in their release (alphabetical) order, then PASS; keys 1-7 and 0.
// The page carries them (frontend/views.py renders labelstudio_ferv/expressions.py into
// <script id="answers-data">), so the browser never keeps a copy of its own.
const answersData = document.getElementById("answers-data");
export const ANSWERS = answersData ? JSON.parse(answersData.textContent) : [];

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
