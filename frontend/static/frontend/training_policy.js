/* Results page: the project's training policy form (GET/PATCH training-policy).
 *
 * Empty number and time fields mean "use the server default" and are sent as null; the
 * server's field errors are shown under the form with the field named.
 */
(function () {
  "use strict";

  const { api, toast } = window.Studio;
  const root = document.getElementById("results");
  const form = root && root.querySelector('[data-region="policy-form"]');
  if (!form) return;

  const url = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/training-policy/";
  const errorBox = root.querySelector('[data-region="policy-error"]');
  const NULLABLE_NUMBERS = ["retrain_every_n_labels", "promotion_tolerance"];

  function fill(policy) {
    form.elements.mode.value = policy.mode;
    form.elements.aggregation.value = policy.aggregation;
    form.elements.replay_ratio.value = policy.replay_ratio;
    form.elements.retrain_every_n_labels.value = policy.retrain_every_n_labels ?? "";
    form.elements.promotion_tolerance.value = policy.promotion_tolerance ?? "";
    form.elements.nightly_at.value = policy.nightly_at ? policy.nightly_at.slice(0, 5) : "";
    form.elements.train_on_ties.checked = policy.train_on_ties;
    const excluded = new Set(policy.excluded_annotator_ids.map(String));
    for (const box of form.querySelectorAll('input[name="excluded_annotator_ids"]')) box.checked = excluded.has(box.value);
  }

  function collect() {
    const body = {
      mode: form.elements.mode.value,
      aggregation: form.elements.aggregation.value,
      replay_ratio: Number(form.elements.replay_ratio.value || 0),
      train_on_ties: form.elements.train_on_ties.checked,
      nightly_at: form.elements.nightly_at.value || null,
      excluded_annotator_ids: Array.from(form.querySelectorAll('input[name="excluded_annotator_ids"]:checked'), (box) => Number(box.value)),
    };
    for (const name of NULLABLE_NUMBERS) {
      const raw = form.elements[name].value;
      body[name] = raw === "" ? null : Number(raw);
    }
    return body;
  }

  function showError(error) {
    const fields = Object.entries(error.fields || {}).map(([name, messages]) => name.replace(/_/g, " ") + ": " + messages.join(", "));
    errorBox.textContent = fields.length ? fields.join(" · ") : error.detail;
    errorBox.hidden = false;
  }

  async function load() {
    try {
      const { data } = await api("GET", url);
      fill(data);
    } catch (error) {
      showError(error);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const button = form.querySelector('[type="submit"]');
    button.disabled = true;
    try {
      const { data } = await api("PATCH", url, collect());
      fill(data);
      toast("Training policy saved.", "success");
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  });

  load();
})();
