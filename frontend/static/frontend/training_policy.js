/* Results page: the project's training policy form (GET/PATCH training-policy).
 *
 * Empty number and time fields mean "use the server default" and are sent as null; the
 * server-wide defaults are shown as the inputs' placeholders. The server's field errors are
 * shown under the form with the field named. The nightly time is in the server's time zone,
 * so that zone is shown next to it, and the next run is written in it too.
 *
 * The form follows the page's poll ("results:refreshed") every REFRESH_MS, so a change made in
 * another tab or by the API shows up; never while the admin is editing it (a field changed since
 * the last load, or the focus inside the form), so their typing is not overwritten.
 */
(function () {
  "use strict";

  const { api, toast } = window.Studio;
  const root = document.getElementById("results");
  const form = root && root.querySelector('[data-region="policy-form"]');
  if (!form) return;

  const url = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/training-policy/";
  const errorBox = root.querySelector('[data-region="policy-error"]');
  const timeZoneBox = root.querySelector('[data-region="policy-time-zone"]');
  const nextNightlyBox = root.querySelector('[data-region="policy-next-nightly"]');
  const NULLABLE_NUMBERS = ["retrain_every_n_labels", "promotion_tolerance", "min_evaluation_pairs"];
  const REFRESH_MS = 15000;
  let edited = false; // a field changed since the form was last filled from the server
  let loadedAt = 0;

  /** "Tue 1 Dec 02:00 UTC": an instant written in the server's zone (the browser's may differ). */
  function formatInZone(iso, zone) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    const options = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    let parts;
    try {
      parts = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: zone }).formatToParts(date);
    } catch (unknownZone) {
      // A zone name this browser does not know: the browser's own time, said so.
      return date.toLocaleString(undefined, options) + " (your time)";
    }
    const part = Object.fromEntries(parts.map((p) => [p.type, p.value]));
    return part.weekday + " " + part.day + " " + part.month + " " + part.hour + ":" + part.minute + " " + zone;
  }

  function nextNightlyText(policy) {
    if (!policy.nightly_at) return "Next nightly run: off";
    if (!policy.next_nightly_at) return "Next nightly run: after the first label";
    return "Next nightly run: " + formatInZone(policy.next_nightly_at, policy.time_zone);
  }

  function fill(policy) {
    const defaults = policy.defaults || {};
    form.elements.mode.value = policy.mode;
    form.elements.aggregation.value = policy.aggregation;
    form.elements.replay_ratio.value = policy.replay_ratio;
    for (const name of NULLABLE_NUMBERS) {
      form.elements[name].value = policy[name] ?? "";
      form.elements[name].placeholder = defaults[name] !== undefined && defaults[name] !== null ? defaults[name] + " (default)" : "default";
    }
    form.elements.when_evaluation_insufficient.value = policy.when_evaluation_insufficient;
    if (form.elements.priority_head) form.elements.priority_head.value = policy.priority_head || "";
    form.elements.nightly_at.value = policy.nightly_at ? policy.nightly_at.slice(0, 5) : "";
    form.elements.train_on_ties.checked = policy.train_on_ties;
    timeZoneBox.textContent = policy.time_zone || "";
    nextNightlyBox.textContent = nextNightlyText(policy);
    const excluded = new Set(policy.excluded_annotator_ids.map(String));
    for (const box of form.querySelectorAll('input[name="excluded_annotator_ids"]')) box.checked = excluded.has(box.value);
    edited = false;
    form.dataset.loaded = "true";
  }

  const editing = () => edited || form.contains(document.activeElement);

  function collect() {
    const body = {
      mode: form.elements.mode.value,
      aggregation: form.elements.aggregation.value,
      replay_ratio: Number(form.elements.replay_ratio.value || 0),
      train_on_ties: form.elements.train_on_ties.checked,
      nightly_at: form.elements.nightly_at.value || null,
      when_evaluation_insufficient: form.elements.when_evaluation_insufficient.value,
      excluded_annotator_ids: Array.from(form.querySelectorAll('input[name="excluded_annotator_ids"]:checked'), (box) => Number(box.value)),
    };
    for (const name of NULLABLE_NUMBERS) {
      const raw = form.elements[name].value;
      body[name] = raw === "" ? null : Number(raw);
    }
    // Only a project with rating criteria has the choice.
    if (form.elements.priority_head) body.priority_head = form.elements.priority_head.value;
    return body;
  }

  function showError(error) {
    const fields = Object.entries(error.fields || {}).map(([name, messages]) => name.replace(/_/g, " ") + ": " + messages.join(", "));
    errorBox.textContent = fields.length ? fields.join(" · ") : error.detail;
    errorBox.hidden = false;
  }

  async function load() {
    loadedAt = Date.now();
    try {
      const { data } = await api("GET", url);
      // The answer may arrive after the admin started typing: keep what they typed.
      if (!editing()) fill(data);
    } catch (error) {
      showError(error);
    }
  }

  form.addEventListener("input", () => { edited = true; });
  form.addEventListener("change", () => { edited = true; });
  root.addEventListener("results:refreshed", () => {
    if (Date.now() - loadedAt >= REFRESH_MS && !editing()) load();
  });

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
