/* Results page: upload a JSONL file to the project's import endpoint and show what happened.
 *
 * The upload is multipart, so it bypasses Studio.api (JSON only) but sends the same CSRF
 * header. An import is all or nothing: on a 400 every bad line is listed with its field.
 */
(function () {
  "use strict";

  const { toast, cookie, el } = window.Studio;
  const root = document.getElementById("results");
  const form = root && root.querySelector('[data-region="import-form"]');
  if (!form) return;

  const url = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/imports/";
  const errorList = root.querySelector('[data-region="import-errors"]');

  function showErrors(body) {
    const errors = body.errors || [];
    const items = errors.length
      ? errors.map((e) => el("li", null, "Line " + e.line + ", " + e.field + ": " + e.message))
      : [el("li", null, body.detail || "The import failed.")];
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
    }
  });
})();
