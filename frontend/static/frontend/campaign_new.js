// The "New campaign" form on the home page: POST /api/v1/campaigns/, then the settings page.
import { api, ApiError, explain, showMessage } from "./api.js";
import { showFieldErrors } from "./forms.js";

const form = document.getElementById("new-campaign");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage(null);
  showFieldErrors(form, "nc-", {});
  const name = form.elements.name.value.trim();
  if (!name) {
    showFieldErrors(form, "nc-", { name: ["Give the campaign a name."] });
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const r = await api("POST", "campaigns/", {
      name,
      description: form.elements.description.value,
    });
    window.location.assign(`/campaigns/${r.data.id}/settings/?created=1`);
  } catch (err) {
    button.disabled = false;
    if (err instanceof ApiError && err.status === 400 && err.details) {
      if (!showFieldErrors(form, "nc-", err.details)) showMessage(explain(err));
    } else {
      showMessage(explain(err));
    }
  }
});
