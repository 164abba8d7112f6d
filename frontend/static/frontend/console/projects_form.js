/* Project form: create a project (/projects/new/) or change one's settings and status
 * (/projects/<id>/settings/). Everything is saved through the projects API, so the page
 * accepts exactly what the API accepts; a refusal's messages are shown next to the fields
 * the API names. The guidelines preview is rendered (and sanitised) by the server.
 */
(function () {
  "use strict";

  const { api, toast, el } = window.Studio;
  const root = document.getElementById("project-form-page");
  const configNode = document.getElementById("project-form-config");
  if (!root || !configNode) return;

  const config = JSON.parse(configNode.textContent);
  const form = root.querySelector('[data-region="project-form"]');
  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const criteriaBox = region("criteria");
  const preview = region("guidelines-preview");
  const formError = region("form-error");
  const SCALES = [5, 7];
  const DEFAULTS = {
    name: "", label_format: "pairwise", rationale_mode: "optional", labels_per_item: 1,
    selection_order: "sequential", gold_rate: 0, criteria: [], guidelines: "", annotators: [], reviewers: [],
    status: "active", uncertainty_random_share: 0.2, reveal_model_verdict: false,
  };
  let project = config.project; // null on the "new" page until it is created
  const STATUS_TEXT = {
    active: "Active: annotators get items.",
    paused: "Paused: annotators still see the project, but get no new items until it resumes.",
    archived: "Archived: hidden from annotators and read-only. Unarchive it to change its settings.",
  };

  /* ------------------------------------------------------------ filling the form */

  function fillSelect(select, choices) {
    select.replaceChildren(
      ...choices.map((choice) => {
        const [value, label] = Array.isArray(choice) ? choice : [choice, choice];
        return el("option", { value: value }, label);
      })
    );
  }

  function criterionRow(criterion) {
    const scale = el("select", { name: "scale", attrs: { "aria-label": "Scale" } },
      SCALES.map((points) => el("option", { value: String(points) }, points + " points")));
    scale.value = String(criterion.scale || 5);
    const required = el("input", { type: "checkbox", name: "required", checked: Boolean(criterion.required) });
    const row = el("div", { className: "criteria__row", dataset: { testid: "criterion" } }, [
      el("input", { type: "text", name: "key", value: criterion.key || "", placeholder: "helpfulness", maxLength: 64, attrs: { "aria-label": "Key" } }),
      el("input", { type: "text", name: "label", value: criterion.label || "", placeholder: "Helpfulness", maxLength: 200, attrs: { "aria-label": "Label" } }),
      scale,
      el("label", { className: "criteria__check" }, [required, "required"]),
      el("button", { type: "button", className: "btn btn--ghost btn--sm", dataset: { action: "remove-criterion" }, title: "Remove this criterion" }, "Remove"),
    ]);
    return row;
  }

  function renderCriteria(criteria) {
    criteriaBox.querySelectorAll('[data-testid="criterion"]').forEach((row) => row.remove());
    criteria.forEach((criterion) => criteriaBox.appendChild(criterionRow(criterion)));
    updateCriteriaHead();
  }

  function updateCriteriaHead() {
    region("criteria-head").hidden = !criteriaBox.querySelector('[data-testid="criterion"]');
  }

  function fillMembers(select, chosen) {
    const picked = new Set(chosen || []);
    fillSelect(select, config.users);
    for (const option of select.options) option.selected = picked.has(option.value);
  }

  function fill(values) {
    const f = form.elements;
    f.name.value = values.name;
    f.label_format.value = values.label_format;
    f.rationale_mode.value = values.rationale_mode;
    f.labels_per_item.value = values.labels_per_item;
    f.selection_order.value = values.selection_order;
    f.gold_rate.value = values.gold_rate;
    f.uncertainty_random_share.value = values.uncertainty_random_share;
    f.reveal_model_verdict.checked = Boolean(values.reveal_model_verdict);
    f.guidelines.value = values.guidelines;
    fillMembers(f.annotators, values.annotators);
    fillMembers(f.reviewers, values.reviewers);
    renderCriteria(values.criteria || []);
  }

  function showFormatHint() {
    const hint = region("format-hint");
    hint.hidden = !config.items;
    hint.textContent = config.items
      ? config.items + " item" + (config.items === 1 ? " is" : "s are") + " imported, built for this format: it can no longer change."
      : "";
  }

  /* ------------------------------------------------------------ reading the form */

  function numberOrNull(input) {
    // Empty or not a number: send null, and the API's 400 names the field.
    return input.value.trim() === "" || Number.isNaN(Number(input.value)) ? null : Number(input.value);
  }

  function selected(select) {
    return Array.from(select.selectedOptions, (option) => option.value);
  }

  function body() {
    const f = form.elements;
    return {
      name: f.name.value,
      label_format: f.label_format.value,
      rationale_mode: f.rationale_mode.value,
      labels_per_item: numberOrNull(f.labels_per_item),
      selection_order: f.selection_order.value,
      gold_rate: numberOrNull(f.gold_rate),
      uncertainty_random_share: numberOrNull(f.uncertainty_random_share),
      reveal_model_verdict: f.reveal_model_verdict.checked,
      guidelines: f.guidelines.value,
      criteria: Array.from(criteriaBox.querySelectorAll('[data-testid="criterion"]'), (row) => {
        const criterion = {
          key: row.querySelector('[name="key"]').value,
          scale: Number(row.querySelector('[name="scale"]').value),
          required: row.querySelector('[name="required"]').checked,
        };
        const label = row.querySelector('[name="label"]').value;
        if (label.trim()) criterion.label = label;
        return criterion;
      }),
      annotators: selected(f.annotators),
      reviewers: selected(f.reviewers),
    };
  }

  /* ------------------------------------------------------------ errors */

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    root.querySelectorAll("[data-error-for]").forEach((node) => {
      node.hidden = true;
      node.textContent = "";
    });
  }

  /** Shows the API's sentence at the top and next to the first field it names; other fields get their own messages. */
  function showError(error) {
    clearErrors();
    formError.textContent = error.detail;
    formError.hidden = false;
    let first = true;
    for (const [name, messages] of Object.entries(error.fields || {})) {
      // "criteria[0]" and "criteria.0.key" belong to the criteria field.
      const base = name.split(/[[.]/)[0];
      const node = root.querySelector('[data-error-for="' + CSS.escape(base) + '"]');
      if (!node) continue;
      const text = first ? error.detail : [].concat(messages).join(" ");
      node.textContent = node.hidden ? text : node.textContent + " " + text;
      node.hidden = false;
      first = false;
    }
  }

  /* ------------------------------------------------------------ guidelines preview */

  let previewSeq = 0;
  let previewTimer = null;

  async function renderPreview() {
    const seq = ++previewSeq;
    try {
      const { data } = await api("POST", config.api_root + "projects/guidelines-preview/", { guidelines: form.elements.guidelines.value });
      // Only the answer to the latest text: a slow earlier answer must not overwrite it.
      if (seq === previewSeq) {
        preview.innerHTML = data.html; // sanitised by the server (annotation.rendering), as the workbench shows it
        preview.dataset.state = "done";
      }
    } catch (error) {
      if (seq === previewSeq) {
        preview.dataset.state = "error";
        preview.replaceChildren(el("p", { className: "field-error" }, error.detail));
      }
    }
  }

  form.elements.guidelines.addEventListener("input", () => {
    preview.dataset.state = "pending";
    clearTimeout(previewTimer);
    previewTimer = setTimeout(renderPreview, 250);
  });

  /* ------------------------------------------------------------ saving */

  const saveButton = form.querySelector('[data-testid="project-save"]');
  const saveStatus = region("save-status");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    saveButton.disabled = true;
    saveStatus.textContent = "Saving…";
    try {
      if (!project) {
        const { data } = await api("POST", config.api_root + "projects/", body());
        saveStatus.textContent = "Created.";
        window.location.assign(config.settings_url.replace("/0/", "/" + data.id + "/"));
        return;
      }
      const { data } = await api("PATCH", config.api_root + "projects/" + project.id + "/", body());
      project = data;
      saveStatus.textContent = "Saved.";
      toast("Settings saved.", "success");
    } catch (error) {
      saveStatus.textContent = "";
      showError(error);
    } finally {
      saveButton.disabled = false;
    }
  });

  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    if (action === "add-criterion") {
      const row = criterionRow({ scale: 5 });
      criteriaBox.appendChild(row);
      updateCriteriaHead();
      row.querySelector('[name="key"]').focus();
    } else if (action === "remove-criterion") {
      button.closest('[data-testid="criterion"]').remove();
      updateCriteriaHead();
    } else if (STATUS_ACTIONS[action]) {
      changeStatus(STATUS_ACTIONS[action]);
    }
  });

  /* ------------------------------------------------------------ status */

  const STATUS_ACTIONS = {
    pause: {
      status: "paused", title: "Pause this project?", ok: "Pause",
      text: "Annotators keep seeing the project but get no new items until you resume it. Labels already on their screens can still be submitted.",
    },
    resume: { status: "active", title: "Resume this project?", ok: "Resume", text: "Annotators get items again." },
    archive: {
      status: "archived", title: "Archive this project?", ok: "Archive",
      text: "It disappears from annotators' lists and becomes read-only. Its labels, models and history are kept; you can unarchive it later.",
    },
    unarchive: { status: "active", title: "Unarchive this project?", ok: "Unarchive", text: "It becomes active again: annotators see it and get items." },
  };

  function confirmDialog(action) {
    const dialog = region("confirm");
    region("confirm-title").textContent = action.title;
    region("confirm-text").textContent = action.text;
    region("confirm-ok").textContent = action.ok;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  async function changeStatus(action) {
    if (!(await confirmDialog(action))) return;
    clearErrors();
    try {
      const { data } = await api("PATCH", config.api_root + "projects/" + project.id + "/", { status: action.status });
      project = data;
      showStatus();
      toast("The project is now " + data.status + ".", "success");
    } catch (error) {
      showError(error);
    }
  }

  function showStatus() {
    if (!project) return;
    const status = project.status;
    region("status-badge").textContent = status;
    region("status-badge").className = "badge " + (status === "active" ? "badge--success" : status === "paused" ? "badge--info" : "badge--muted");
    region("status-text").textContent = STATUS_TEXT[status] || status;
    const show = { pause: status === "active", resume: status === "paused", archive: status !== "archived", unarchive: status === "archived" };
    for (const [action, visible] of Object.entries(show)) root.querySelector('[data-action="' + action + '"]').hidden = !visible;
    // Archived is read-only: the API refuses every change but unarchiving, so the form says so up front.
    region("fields").disabled = status === "archived";
    saveButton.disabled = status === "archived";
  }

  /* ------------------------------------------------------------ start */

  fillSelect(form.elements.label_format, config.choices.label_format);
  fillSelect(form.elements.rationale_mode, config.choices.rationale_mode);
  fillSelect(form.elements.selection_order, config.choices.selection_order);
  fill(Object.assign({}, DEFAULTS, project || {}));
  showFormatHint();
  showStatus();
  if (project) {
    preview.innerHTML = project.guidelines_html; // rendered and sanitised by the server
    preview.dataset.state = "done";
  }
})();
