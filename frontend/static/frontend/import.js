/* Upload a JSONL file to a project's import endpoint and show what happened. Used by the
 * Results page's import card and the project's Import page: the form sits inside an element
 * carrying data-api-root and data-project-id.
 *
 * The upload is multipart, so it bypasses Studio.api (JSON only) but sends the same CSRF
 * header. An import is all or nothing: on a 400 every bad line is listed with its field.
 * Either way an "import:finished" event bubbles from the form, so the Import page can show
 * the new row of its history.
 */
(function () {
  "use strict";

  const { toast, cookie, el } = window.Studio;
  const form = document.querySelector('[data-region="import-form"]');
  const root = form && form.closest("[data-project-id][data-api-root]");
  if (!root) return;

  const url = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/imports/";
  const errorList = form.querySelector('[data-region="import-errors"]');

  function showErrors(body) {
    const errors = body.errors || [];
    const items = errors.length
      ? errors.map((e) => el("li", null, (e.line === null || e.line === undefined ? "" : "Line " + e.line + ", ") + e.field + ": " + e.message))
      : [el("li", null, body.detail || "The import failed.")];
    if (body.error_count > errors.length) items.push(el("li", null, "… and " + (body.error_count - errors.length) + " more problems."));
    errorList.replaceChildren(...items);
    errorList.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorList.hidden = true;
    const file = form.elements.file.files[0];
    if (!file) return;
    const button = form.querySelector('[type="submit"]');
    button.disabled = true;
    const data = new FormData();
    data.append("file", file);
    try {
      const response = await fetch(url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": cookie("csrftoken"), Accept: "application/json" },
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        showErrors(body);
        return;
      }
      toast("Imported " + body.prompts + " prompts, " + body.responses + " responses, " + body.items + " items.", "success");
      form.reset();
    } catch (error) {
      toast("The upload did not reach the server: " + error.message);
    } finally {
      button.disabled = false;
      form.dispatchEvent(new CustomEvent("import:finished", { bubbles: true }));
    }
  });
})();
