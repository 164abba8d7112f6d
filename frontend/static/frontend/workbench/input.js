/* Keyboard and mouse for the workbench: routes every key and click to the flow
 * (annotate.js), the shared fields (fields.js) or the format's controls, and runs the
 * panels (help, guidelines, skip reasons) and view modes (word diff, synced scroll).
 *
 * Order of a key: the skip dialog if open; nothing while typing (Esc leaves the field); the
 * help list; a focused rating row or flag toggle; shortcuts common to both formats; then
 * the format's own keys. In a ranking, a response's letter wins over a shortcut on the
 * same key (Shift+key still reaches the shortcut).
 *
 * Exposed as Workbench.input.install(ctx).
 */
(function () {
  "use strict";

  const Workbench = (window.Workbench = window.Workbench || {});
  const { toast } = window.Studio;

  /**
   * ctx: {root, ui, state, format, projectId, flow: {skip(item, reason, startedAt), undo(),
   * reload(), autosize(textarea)}}. `state` is the flow's, read here for the item on screen
   * and written for the view modes (state.diff, state.sync).
   */
  function install(ctx) {
    const { root, ui, state, format, projectId, flow } = ctx;
    const items = Workbench.items;
    const fields = Workbench.fields;

    /* ------------------------------------------------------------ panels and modes */

    function remember(name, on) {
      try {
        window.sessionStorage.setItem(name + ":" + projectId, on ? "1" : "");
      } catch (storageError) {
        /* private mode: the setting just does not survive a reload */
      }
    }

    function recalled(name) {
      try {
        return Boolean(window.sessionStorage.getItem(name + ":" + projectId));
      } catch (storageError) {
        return false;
      }
    }

    function toggleGuidelines(force) {
      const open = force === undefined ? ui.guidelines.hidden : force;
      ui.guidelines.hidden = !open;
      for (const button of document.querySelectorAll('[data-action="guidelines"][aria-controls]')) {
        button.setAttribute("aria-expanded", String(open));
      }
      remember("guidelines-open", open);
    }

    function toggleHelp(force) {
      ui.help.hidden = !(force === undefined ? ui.help.hidden : force);
    }

    function setMode(name, on) {
      state[name] = on;
      const action = name === "diff" ? "diff" : "sync-scroll";
      root.querySelector('[data-action="' + action + '"]').setAttribute("aria-pressed", String(on));
      root.classList.toggle("is-" + action, on);
      if (name === "diff" && state.current) items.applyDiff(state.current, on, format.diffBase(state.current));
      remember(name, on);
    }

    function openSkip() {
      ui.skipOther.hidden = true;
      ui.skipOther.reset();
      ui.skipDialog.hidden = false;
    }

    function closeSkip() {
      ui.skipDialog.hidden = true;
    }

    function pickSkipReason(reason, startedAt) {
      if (reason === "Other") {
        ui.skipOther.hidden = false;
        ui.skipOther.elements.other.focus();
        return;
      }
      closeSkip();
      if (state.current) flow.skip(state.current, reason, startedAt);
    }

    /* ------------------------------------------------------------ keys and clicks */

    function isTyping(target) {
      if (!target || !(target instanceof Element)) return false;
      return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
    }

    const SKIP_REASONS = Array.from(document.querySelectorAll("[data-skip-reason]"), (node) => node.dataset.skipReason);

    function onSkipKey(event, key, startedAt) {
      if (key === "Escape") closeSkip();
      else if (isTyping(event.target)) return; // the "other" field: Enter submits its form
      else if (/^[1-9]$/.test(key) && SKIP_REASONS[Number(key) - 1]) pickSkipReason(SKIP_REASONS[Number(key) - 1], startedAt);
      else return;
      event.preventDefault();
    }

    /** Shortcuts that are the same in every format. Returns true when `key` was one. */
    function globalKey(event, key, item) {
      const letterTaken = format.ownsKey(key, item) && !event.shiftKey;
      if (key === "g" && !letterTaken) toggleGuidelines();
      else if (key === "w") setMode("diff", !state.diff);
      else if (key === "l") setMode("sync", !state.sync);
      else if (key === "u") flow.undo();
      else if (!item || state.busy) return false;
      else if (key === "s") openSkip();
      else if (key === "r") {
        if (!fields.focusRatings(item)) toast("This project has no ratings.", "info", 2000);
      } else if (key === "f" && !letterTaken) fields.focusFlags(item, root);
      else if (key === "n" && ui.rationale) ui.rationale.focus();
      else return false;
      return true;
    }

    const MODIFIERS = ["Shift", "Control", "Alt", "Meta", "CapsLock", "AltGraph"];
    // Toggles that keep focus after a click; Enter on them submits the item (Space still toggles).
    const STAY_ON_ENTER = ".flag-toggle, .rate button, .rank-chip";

    function onKeydown(event) {
      if (event.defaultPrevented || event.isComposing || MODIFIERS.includes(event.key)) return;
      const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      // Same clock as performance.now(): the switch time includes the wait for the handler.
      const startedAt = event.timeStamp || performance.now();
      if ((event.ctrlKey || event.metaKey) && key === "Enter") {
        // Submit from anywhere, the rationale field included.
        if (state.current && ui.help.hidden && ui.skipDialog.hidden) {
          event.preventDefault();
          format.keydown({ shiftKey: false, target: document.body }, "Enter", state.current, startedAt);
        }
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (!ui.skipDialog.hidden) return onSkipKey(event, key, startedAt);
      if (isTyping(event.target)) {
        if (key === "Escape") event.target.blur();
        return;
      }
      if (key === "?") {
        toggleHelp();
      } else if (key === "Escape" && !ui.help.hidden) {
        toggleHelp(false);
      } else if (!ui.help.hidden) {
        return; // no judgement while the shortcut list covers the item
      } else if (key === "Escape" && !ui.guidelines.hidden) {
        toggleGuidelines(false);
      } else if (state.current && fields.ratingKey(event, key, state.current)) {
        // handled: a rating row has focus
      } else if (state.current && fields.flagNavKey(event, key, state.current, root)) {
        // handled: a flag toggle has focus
      } else if (event.target instanceof HTMLButtonElement && (key === " " || (key === "Enter" && !event.target.matches(STAY_ON_ENTER)))) {
        return; // the focused button clicks itself
      } else if (event.repeat && !key.startsWith("Arrow")) {
        return; // a held key is not a second vote
      } else if (globalKey(event, key, state.current)) {
        // handled
      } else if (!(state.current && !state.busy && format.keydown(event, key, state.current, startedAt))) {
        return;
      }
      event.preventDefault();
    }

    function onClick(event) {
      const startedAt = event.timeStamp || performance.now();
      const target = event.target.closest("[data-action], [data-skip-reason], .rate button, .flag-toggle, button");
      const item = state.current;
      if (!target) {
        const card = event.target.closest(".response");
        if (card && item && format.cardClick && !window.getSelection().toString()) format.cardClick(card.dataset.position, item);
        return;
      }
      const action = target.dataset.action;
      if (target.dataset.skipReason) pickSkipReason(target.dataset.skipReason, startedAt);
      else if (action === "guidelines") toggleGuidelines();
      else if (action === "help") toggleHelp();
      else if (action === "diff") setMode("diff", !state.diff);
      else if (action === "sync-scroll") setMode("sync", !state.sync);
      else if (action === "undo") flow.undo();
      else if (action === "reload") flow.reload();
      else if (action === "skip-cancel") closeSkip();
      else if (!item || state.busy) return;
      else if (action === "skip") openSkip();
      else if (action === "submit") format.keydown({ shiftKey: false, target: target }, "Enter", item, startedAt);
      else if (target.matches(".rate button")) {
        const group = target.parentElement;
        const value = Number(target.dataset.value);
        const current = (item.answer.ratings[group.dataset.position] || {})[group.dataset.criterion];
        fields.setRating(item, group.dataset.position, group.dataset.criterion, current === value ? null : value);
      } else if (target.matches(".flag-toggle")) {
        fields.toggleFlag(item, target.dataset.flag, target.dataset.position || null, root);
        return; // keep focus: the flags are walked with the arrow keys
      } else if (!format.click(target, item, startedAt)) return;
      // A clicked button keeps focus, and Enter or Space would click it again on the next item.
      if (target.closest(".wb-actions")) target.blur();
    }

    document.addEventListener("keydown", onKeydown);
    document.addEventListener("click", onClick);
    ui.help.addEventListener("click", (event) => {
      if (event.target === ui.help) toggleHelp(false);
    });
    ui.skipDialog.addEventListener("click", (event) => {
      if (event.target === ui.skipDialog) closeSkip();
    });
    ui.skipOther.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = ui.skipOther.elements.other.value.trim();
      closeSkip();
      if (state.current) flow.skip(state.current, text ? "Other: " + text : "Other", event.timeStamp);
    });
    if (ui.rationale) {
      ui.rationale.addEventListener("input", () => {
        flow.autosize(ui.rationale);
        if (!state.current) return;
        state.current.answer.rationale = ui.rationale.value;
        fields.clearError(state.current, "rationale");
      });
    }
    items.syncScroll(ui.responses, () => state.sync);

    if (recalled("guidelines-open")) toggleGuidelines(true);
    if (recalled("diff")) setMode("diff", true);
    if (recalled("sync")) setMode("sync", true);
  }

  Workbench.input = { install: install };
})();
