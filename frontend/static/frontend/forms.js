// Field errors of the API's 400 answers (`details`: {field: [messages]}) shown next to the
// fields of a form: the input with id PREFIX+field gets aria-invalid, and the element with id
// PREFIX+field+"-error" the messages. Returns whether any field of the form was named.
export function showFieldErrors(form, prefix, details) {
  let shown = false;
  for (const node of form.querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  let first = null;
  for (const [field, messages] of Object.entries(details || {})) {
    const input = document.getElementById(prefix + field);
    const slot = document.getElementById(prefix + field + "-error");
    if (!input || !slot) continue;
    slot.textContent = flatten(messages).join(" ");
    slot.hidden = false;
    input.setAttribute("aria-invalid", "true");
    first = first || input;
    shown = true;
  }
  if (first) first.focus();
  return shown;
}

// A field's messages as text: a list of strings, or (a dict field such as scene_priority) an
// object of lists by key, shown as "key: message".
function flatten(messages, key = null) {
  if (messages && typeof messages === "object" && !Array.isArray(messages)) {
    return Object.entries(messages).flatMap(([k, v]) => flatten(v, k));
  }
  return [].concat(messages).map((m) => (key === null ? String(m) : `${key}: ${m}`));
}

// Ask before doing something that cannot be taken back; true when the person agreed.
export function confirmed(question) {
  return window.confirm(question);
}

export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
