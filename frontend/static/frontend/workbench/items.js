/* One item on the workbench: the annotator's draft answer, its DOM (conversation + a card
 * per response), and the reading aids that work on those cards (word diff, synced scroll).
 *
 * The view is built off-screen when an item is prefetched, so showing it later is a
 * replaceChildren() and no HTML parsing. Ratings and flags are in fields.js; the format's
 * controls (pairwise buttons, ranking board) in pairwise.js / ranking.js.
 *
 * Exposed as Workbench.items.
 */
(function () {
  "use strict";

  const Workbench = (window.Workbench = window.Workbench || {});
  const { el } = window.Studio;

  const ROLE_NAMES = { user: "User", assistant: "Assistant", system: "System" };

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // randomUUID needs a secure context (https or localhost); getRandomValues does not.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  /** Seconds spent on one item while the tab was visible; the clock stops while it is hidden. */
  class ActiveClock {
    constructor(carriedMs) {
      this.totalMs = carriedMs || 0;
      this.since = null;
    }
    pause() {
      if (this.since === null) return;
      this.totalMs += performance.now() - this.since;
      this.since = null;
    }
    resume() {
      if (this.since === null && !document.hidden) this.since = performance.now();
    }
    ms() {
      return this.totalMs + (this.since === null ? 0 : performance.now() - this.since);
    }
    seconds() {
      return Math.round(this.ms()) / 1000;
    }
  }

  /* ------------------------------------------------------------ building */

  /**
   * A fresh item for a leased assignment. `draft` (from an undone label) restores what the
   * annotator had entered, so undo is "edit my last answer", not "start again".
   */
  function create(assignment, config, format, draft) {
    const item = {
      assignment: assignment,
      positions: assignment.responses.map((response) => response.position),
      clientId: newClientId(),
      clock: new ActiveClock(draft ? draft.ms : 0),
      answer: Object.assign(
        { ratings: {}, flags: new Set(), rationale: "" },
        format.emptyAnswer(assignment),
        draft ? cloneAnswer(draft.answer) : {}
      ),
      errors: {},
      diffs: new Map(),
      view: null,
    };
    item.view = build(item, config, format);
    return item;
  }

  function cloneAnswer(answer) {
    const copy = JSON.parse(JSON.stringify(Object.assign({}, answer, { flags: [] })));
    copy.flags = new Set(answer.flags);
    return copy;
  }

  function build(item, config, format) {
    const conversation = item.assignment.conversation.map((message) => {
      const role = Object.prototype.hasOwnProperty.call(ROLE_NAMES, message.role) ? message.role : "other";
      const body = el("div", { className: "msg__body md" });
      // Sanitised on the server (annotation.rendering): the one place HTML from the API is trusted.
      body.innerHTML = message.html;
      return el("div", { className: "msg msg--" + role }, [
        el("div", { className: "msg__role" }, ROLE_NAMES[role] || message.role),
        body,
      ]);
    });
    const cards = {};
    for (const response of item.assignment.responses) {
      cards[response.position] = buildCard(item, response, config, format);
    }
    return { conversation: conversation, cards: cards };
  }

  function buildCard(item, response, config, format) {
    const position = response.position;
    const md = el("div", { className: "response__md md" });
    md.innerHTML = response.html; // sanitised server-side, see above
    const diff = el("div", { className: "response__diff", hidden: true });
    const head = el("header", { className: "response__head" }, [
      el("h2", { className: "response__title", id: "response-" + position + "-title" }, [
        el("span", { className: "pos" }, position),
        "Response " + position,
      ]),
      el("span", { className: "response__note muted small", dataset: { region: "diff-note" } }),
      format.cardBadge ? format.cardBadge(position) : null,
    ]);
    if (format.draggableCards) {
      head.draggable = true;
      head.dataset.dragPosition = position;
      head.title = "Drag onto the ranking below";
    }
    const foot = Workbench.fields.cardFoot(item, position, config);
    const card = el("article", {
      className: "response pos--" + position,
      dataset: { testid: "response-" + position, position: position },
      attrs: { "aria-labelledby": "response-" + position + "-title" },
    }, [head, el("div", { className: "response__body" }, [md, diff]), foot]);
    return { root: card, md: md, diff: diff, note: head.querySelector('[data-region="diff-note"]') };
  }

  /** Puts the item's view into the page. */
  function mount(item, ui) {
    ui.conversation.replaceChildren(...item.view.conversation);
    ui.conversation.parentElement.scrollTop = ui.conversation.parentElement.scrollHeight;
    ui.responses.replaceChildren(...item.positions.map((position) => item.view.cards[position].root));
    ui.responses.style.setProperty("--columns", String(item.positions.length));
    if (ui.rationale) ui.rationale.value = item.answer.rationale;
    Workbench.fields.render(item, ui.root);
  }

  /* ------------------------------------------------------------ diff */

  function cachedCompare(item, base, other) {
    const key = base + ">" + other;
    if (!item.diffs.has(key)) {
      const text = (position) => item.assignment.responses.find((r) => r.position === position).text;
      item.diffs.set(key, Workbench.diff.compare(text(base), text(other)));
    }
    return item.diffs.get(key);
  }

  /**
   * Diff view on or off. Two responses: side by side (A marks what B dropped, B what it
   * added). More: every card against `base`, with the base's missing words struck through.
   */
  function applyDiff(item, enabled, base) {
    const diff = Workbench.diff;
    for (const position of item.positions) {
      const card = item.view.cards[position];
      card.md.hidden = enabled;
      card.diff.hidden = !enabled;
      card.root.classList.toggle("is-diff-base", false);
      card.note.textContent = "";
      if (!enabled) continue;
      let result;
      let fragment;
      if (item.positions.length === 2) {
        result = cachedCompare(item, "A", "B");
        fragment = diff.renderSide(result, position === "A" ? "a" : "b");
      } else if (position === base) {
        card.root.classList.add("is-diff-base");
        card.note.textContent = "diff base";
        card.diff.replaceChildren(document.createTextNode(item.assignment.responses.find((r) => r.position === base).text));
        continue;
      } else {
        result = cachedCompare(item, base, position);
        fragment = diff.renderInline(result);
      }
      card.diff.replaceChildren(fragment);
      const same = Math.round(result.similarity * 100) + "% same words" + (item.positions.length > 2 ? " as " + base : "");
      card.note.textContent = result.truncated ? "too long to align word by word" : same;
    }
  }

  /* ------------------------------------------------------------ synced scroll */

  /**
   * Scroll every response body to the same relative position as the one being scrolled.
   * The body the user scrolls leads; the echo scroll events of the followers are ignored
   * for a moment so they do not fight back.
   */
  function syncScroll(container, isEnabled) {
    let leader = null;
    let leaderAt = 0;
    container.addEventListener(
      "scroll",
      (event) => {
        const source = event.target;
        if (!isEnabled() || !(source instanceof Element) || !source.classList.contains("response__body")) return;
        const now = performance.now();
        if (leader && leader !== source && now - leaderAt < 150) return;
        leader = source;
        leaderAt = now;
        const range = source.scrollHeight - source.clientHeight;
        const ratio = range > 0 ? source.scrollTop / range : 0;
        for (const body of container.querySelectorAll(".response__body")) {
          if (body !== source) body.scrollTop = ratio * (body.scrollHeight - body.clientHeight);
        }
      },
      true // scroll does not bubble; capture sees every body's
    );
  }

  Workbench.items = {
    create: create,
    mount: mount,
    applyDiff: applyDiff,
    syncScroll: syncScroll,
  };
})();
