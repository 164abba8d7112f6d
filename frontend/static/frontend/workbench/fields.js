/* The per-response inputs every format shares: criteria ratings, flags and the rationale,
 * with the checks the server also makes and the field errors it sends back.
 *
 * Draft answers live on the item (`item.answer.ratings`, `.flags`, `.rationale`); the DOM
 * for ratings and flags is built with each card (cardFoot, called by items.js) and updated here.
 *
 * Exposed as Workbench.fields.
 */
(function () {
  "use strict";

  const Workbench = (window.Workbench = window.Workbench || {});
  const { el } = window.Studio;

  const RESPONSE_FLAGS = [
    { flag: "unsafe", label: "Unsafe", title: "Harmful or unsafe content" },
    { flag: "factual_error", label: "Factual error", title: "States something false" },
    { flag: "personal_data", label: "Personal data", title: "Contains personal data (names, contacts, IDs)" },
  ];

  /** The footer of a response card: one row per criterion, then the flag toggles. */
  function cardFoot(item, position, config) {
    return el("footer", { className: "response__foot" }, [
      ...config.criteria.map((criterion) => ratingRow(item, position, criterion)),
      el("div", { className: "flags", attrs: { role: "group", "aria-label": "Flag response " + position } }, [
        el("span", { className: "flags__label" }, "Flag"),
        ...RESPONSE_FLAGS.map((spec) =>
          el("button", {
            type: "button",
            className: "flag-toggle",
            title: spec.title,
            dataset: { flag: spec.flag, position: position, testid: "flag-" + spec.flag + "-" + position },
            attrs: { "aria-pressed": String(item.answer.flags.has(flagKey(spec.flag, position))) },
          }, spec.label)
        ),
      ]),
    ]);
  }

  function ratingRow(item, position, criterion) {
    const field = "ratings." + position + "." + criterion.key;
    const current = (item.answer.ratings[position] || {})[criterion.key];
    const buttons = [];
    for (let value = 1; value <= criterion.scale; value++) {
      buttons.push(
        el("button", {
          type: "button",
          tabIndex: -1,
          dataset: { value: String(value) },
          attrs: { role: "radio", "aria-checked": String(current === value) },
        }, String(value))
      );
    }
    return el("div", { className: "rate-row", dataset: { field: field } }, [
      el("span", { className: "rate-row__label", title: criterion.label }, [
        criterion.label,
        criterion.required ? el("span", { className: "req", attrs: { "aria-hidden": "true" } }, "*") : null,
      ]),
      el("div", {
        className: "rate",
        tabIndex: 0,
        dataset: { position: position, criterion: criterion.key, scale: String(criterion.scale), testid: "rate-" + position + "-" + criterion.key },
        attrs: {
          role: "radiogroup",
          "aria-label": criterion.label + " of response " + position + " (1 to " + criterion.scale + (criterion.required ? ", required" : "") + ")",
        },
      }, buttons),
      el("span", { className: "field-error", dataset: { errorFor: field }, hidden: true }),
    ]);
  }

  /** Shows an item's flags and errors, including on the page controls outside its cards. */
  function render(item, root) {
    renderFlags(item, root);
    renderErrors(item, root);
  }

  /* ------------------------------------------------------------ ratings */

  function setRating(item, position, key, value) {
    const scores = item.answer.ratings[position] || (item.answer.ratings[position] = {});
    if (value === null) delete scores[key];
    else scores[key] = value;
    const group = item.view.cards[position].root.querySelector('.rate[data-criterion="' + key + '"]');
    for (const button of group.children) button.setAttribute("aria-checked", String(Number(button.dataset.value) === value));
    clearError(item, "ratings." + position + "." + key);
  }

  function ratingGroups(item) {
    return item.positions.flatMap((position) => Array.from(item.view.cards[position].root.querySelectorAll(".rate")));
  }

  /** R: focus the first rating still empty (or the first one), scrolled into view. */
  function focusRatings(item) {
    const groups = ratingGroups(item);
    if (!groups.length) return false;
    const empty = groups.find((group) => !group.querySelector('[aria-checked="true"]'));
    (empty || groups[0]).focus();
    return true;
  }

  function moveRatingFocus(item, group, step) {
    const groups = ratingGroups(item);
    const next = groups[groups.indexOf(group) + step];
    if (next) next.focus();
    else group.blur(); // past the last one: back to the item's shortcuts
  }

  /** Keys while a rating row has focus; returns true when handled. */
  function ratingKey(event, key, item) {
    const group = event.target.closest && event.target.closest(".rate");
    if (!group || !item) return false;
    const position = group.dataset.position;
    const criterion = group.dataset.criterion;
    const scale = Number(group.dataset.scale);
    const value = (item.answer.ratings[position] || {})[criterion] || 0;
    if (/^[1-9]$/.test(key)) {
      if (Number(key) > scale) return true; // out of range: swallow, so 6 on a 1-5 scale chooses nothing
      setRating(item, position, criterion, Number(key));
      moveRatingFocus(item, group, 1);
    } else if (key === "0" || key === "Backspace" || key === "Delete") {
      setRating(item, position, criterion, null);
    } else if (key === "ArrowRight" || key === "ArrowLeft") {
      const next = Math.min(scale, Math.max(1, value + (key === "ArrowRight" ? 1 : -1)));
      setRating(item, position, criterion, next);
    } else if (key === "ArrowDown" || key === "ArrowUp") {
      moveRatingFocus(item, group, key === "ArrowDown" ? 1 : -1);
    } else if (key === "Escape") {
      group.blur();
    } else {
      return false;
    }
    return true;
  }

  /* ------------------------------------------------------------ flags */

  function flagKey(flag, position) {
    return flag + "|" + (position || "");
  }

  function toggleFlag(item, flag, position, root) {
    const key = flagKey(flag, position);
    if (item.answer.flags.has(key)) item.answer.flags.delete(key);
    else item.answer.flags.add(key);
    renderFlags(item, root);
  }

  /** Flag toggles of the item's cards plus the item-level ones in the page template. */
  function flagButtons(item, root) {
    const inCards = item.positions.flatMap((position) => Array.from(item.view.cards[position].root.querySelectorAll(".flag-toggle")));
    return inCards.concat(Array.from(root.querySelectorAll(".flags--item .flag-toggle")));
  }

  function renderFlags(item, root) {
    for (const button of flagButtons(item, root)) {
      button.setAttribute("aria-pressed", String(item.answer.flags.has(flagKey(button.dataset.flag, button.dataset.position))));
    }
  }

  function focusFlags(item, root) {
    const buttons = flagButtons(item, root);
    if (buttons.length) buttons[0].focus();
  }

  /** Arrow keys walk the flag toggles (Space toggles natively); Esc leaves. */
  function flagNavKey(event, key, item, root) {
    const button = event.target.closest && event.target.closest(".flag-toggle");
    if (!button || !item) return false;
    const buttons = flagButtons(item, root);
    const index = buttons.indexOf(button);
    let next = null;
    if (key === "ArrowRight" || key === "ArrowDown") next = buttons[Math.min(buttons.length - 1, index + 1)];
    else if (key === "ArrowLeft" || key === "ArrowUp") next = buttons[Math.max(0, index - 1)];
    else if (key === "Home") next = buttons[0];
    else if (key === "End") next = buttons[buttons.length - 1];
    else if (key === "Escape") button.blur();
    else return false;
    if (next) next.focus();
    return true;
  }

  /* ------------------------------------------------------------ submit body + checks */

  /** The parts of a submit body shared by both formats. */
  function extras(item, config) {
    const ratings = {};
    for (const [position, scores] of Object.entries(item.answer.ratings)) {
      if (Object.keys(scores).length) ratings[position] = Object.assign({}, scores);
    }
    const flags = Array.from(item.answer.flags, (key) => {
      const [flag, position] = key.split("|");
      return { flag: flag, position: position || null };
    });
    const body = { ratings: ratings, flags: flags };
    if (config.rationale_mode !== "off") body.rationale = item.answer.rationale.trim();
    return body;
  }

  /** The server's checks, run first so a doomed submit never leaves the screen. Same field names. */
  function validate(item, config) {
    const fields = {};
    for (const position of item.positions) {
      for (const criterion of config.criteria) {
        if (criterion.required && !(item.answer.ratings[position] || {})[criterion.key]) {
          fields["ratings." + position + "." + criterion.key] = ["is required"];
        }
      }
    }
    if (config.rationale_mode === "required" && !item.answer.rationale.trim()) {
      fields.rationale = ["is required in this project: say briefly why"];
    }
    return fields;
  }

  /* ------------------------------------------------------------ field errors */

  function errorTargets(item, root) {
    const inCards = item.positions.flatMap((position) => Array.from(item.view.cards[position].root.querySelectorAll("[data-error-for]")));
    return inCards.concat(Array.from(root.querySelectorAll(".wb-task [data-error-for]")));
  }

  /**
   * Shows `item.errors` ({field: [message]}, the API's `fields`) next to each field. A field
   * with no place on screen (strength, flags[0].flag, ...) is shown under the main controls.
   */
  function renderErrors(item, root) {
    const targets = errorTargets(item, root);
    const placed = new Set();
    for (const target of targets) {
      const messages = item.errors[target.dataset.errorFor];
      target.hidden = !messages;
      target.textContent = messages ? messages.join(" ") : "";
      const field = target.closest("[data-field]");
      if (field) field.classList.toggle("has-error", Boolean(messages));
      if (messages) placed.add(target.dataset.errorFor);
    }
    const rest = Object.entries(item.errors).filter(([name]) => !placed.has(name));
    const fallback = targets.find((target) => target.dataset.errorFor === "choice" || target.dataset.errorFor === "ranking");
    if (rest.length && fallback) {
      fallback.hidden = false;
      fallback.textContent = [fallback.textContent].concat(rest.map(([name, messages]) => name + ": " + messages.join(" "))).join(" ").trim();
      fallback.closest("[data-field]").classList.add("has-error");
    }
  }

  function clearError(item, field) {
    if (!item.errors[field]) return;
    delete item.errors[field];
    const target = errorTargets(item, document).find((node) => node.dataset.errorFor === field);
    if (!target) return;
    target.hidden = true;
    target.textContent = "";
    const holder = target.closest("[data-field]");
    if (holder) holder.classList.remove("has-error");
  }

  /** Focus the first field with an error, so fixing it is one keystroke away. */
  function focusFirstError(item, ui) {
    const first = Object.keys(item.errors)[0];
    if (!first) return;
    if (first.startsWith("ratings.")) {
      const [, position, key] = first.split(".");
      const card = item.view.cards[position];
      const group = card && card.root.querySelector('.rate[data-criterion="' + key + '"]');
      if (group) group.focus();
    } else if (first === "rationale" && ui.rationale) {
      ui.rationale.focus();
    }
  }

  Workbench.fields = {
    cardFoot: cardFoot,
    render: render,
    setRating: setRating,
    focusRatings: focusRatings,
    ratingKey: ratingKey,
    toggleFlag: toggleFlag,
    focusFlags: focusFlags,
    flagNavKey: flagNavKey,
    extras: extras,
    validate: validate,
    renderErrors: renderErrors,
    clearError: clearError,
    focusFirstError: focusFirstError,
  };
})();
