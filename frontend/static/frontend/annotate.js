/* Annotator workbench: shows one leased comparison item, sends the judgement, moves on
 * without a page reload.
 *
 * Flow: fetchNext() asks the API for a lease and returns its payload; show() puts a payload
 * on screen. They are separate so a later version can prefetch the following item while
 * the annotator reads this one and hand it straight to show().
 *
 * Idempotency: each item on screen gets one client_id (a UUID). A submit that is retried
 * after a network error sends the same id, so the server stores at most one label.
 */
(function () {
  "use strict";

  const { api, toast, el } = window.Studio;
  const root = document.getElementById("workbench");
  if (!root) return;

  const HEARTBEAT_MS = 60 * 1000;
  const SKIP_REASON = "skipped";
  const apiRoot = root.dataset.apiRoot;
  const projectId = root.dataset.projectId;
  const urls = {
    next: () => apiRoot + "projects/" + projectId + "/next-item/",
    submit: (id) => apiRoot + "assignments/" + id + "/submit/",
    skip: (id) => apiRoot + "assignments/" + id + "/skip/",
    heartbeat: (id) => apiRoot + "assignments/" + id + "/heartbeat/",
  };

  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const ui = {
    task: region("task"),
    conversation: region("conversation"),
    responses: { A: region("response-A"), B: region("response-B") },
    rationale: region("rationale"),
    progress: root.querySelector('[data-testid="progress"]'),
    empty: root.querySelector('[data-testid="empty-state"]'),
    emptySummary: region("empty-summary"),
    error: region("error"),
    errorDetail: region("error-detail"),
    guidelines: document.getElementById("guidelines"),
    help: document.getElementById("help"),
    strengthButtons: Array.from(root.querySelectorAll("[data-strength]")),
  };

  /** Seconds spent on one item while the tab was visible; the clock stops while it is hidden. */
  class ActiveClock {
    constructor() {
      this.totalMs = 0;
      this.since = document.hidden ? null : performance.now();
    }
    pause() {
      if (this.since === null) return;
      this.totalMs += performance.now() - this.since;
      this.since = null;
    }
    resume() {
      if (this.since === null) this.since = performance.now();
    }
    seconds() {
      const runningMs = this.since === null ? 0 : performance.now() - this.since;
      return Math.round(this.totalMs + runningMs) / 1000;
    }
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // randomUUID needs a secure context (https or localhost); getRandomValues does not.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // The item on screen: {assignment, clientId, clock, strength}; null when there is none.
  let current = null;
  let busy = false;
  let heartbeatTimer = null;
  let doneTotal = 0;

  /* ---------------------------------------------------------------- API */

  /** Leases the next item. Resolves with {assignment: A | null, progress}. */
  async function fetchNext() {
    const { data } = await api("POST", urls.next());
    return data;
  }

  /** Runs one request at a time; a second key press while one is in flight is dropped. */
  async function exclusive(task) {
    if (busy) return;
    busy = true;
    root.classList.add("is-busy");
    root.setAttribute("aria-busy", "true");
    try {
      await task();
    } finally {
      busy = false;
      root.classList.remove("is-busy");
      root.removeAttribute("aria-busy");
    }
  }

  async function advance() {
    stopHeartbeat();
    let data;
    try {
      data = await fetchNext();
    } catch (error) {
      showLoadError(error);
      return;
    }
    show(data);
  }

  function choose(choice) {
    if (!current) return;
    const item = current;
    return exclusive(async () => {
      flash(choice);
      const body = {
        choice: choice,
        strength: choice === "tie" ? null : item.strength,
        rationale: ui.rationale.value.trim(),
        seconds_spent: item.clock.seconds(),
        client_id: item.clientId,
      };
      try {
        const { data } = await api("POST", urls.submit(item.assignment.id), body);
        renderProgress(data.progress);
      } catch (error) {
        toast(error.detail);
        // 409: the lease lapsed and someone else may hold the item; 404: it is gone.
        // Either way this judgement cannot be stored, so move on. Anything else
        // (network, validation) keeps the item and its client_id for a retry.
        if (error.status !== 409 && error.status !== 404) return;
      }
      await advance();
    });
  }

  function skip() {
    if (!current) return;
    const item = current;
    return exclusive(async () => {
      try {
        await api("POST", urls.skip(item.assignment.id), { reason: SKIP_REASON });
      } catch (error) {
        toast(error.detail);
        if (error.status !== 409 && error.status !== 404) return;
      }
      await advance();
    });
  }

  function reload() {
    return exclusive(advance);
  }

  /* ---------------------------------------------------------- heartbeat */

  function startHeartbeat() {
    stopHeartbeat();
    heartbeatTimer = window.setInterval(heartbeat, HEARTBEAT_MS);
  }

  function stopHeartbeat() {
    if (heartbeatTimer !== null) window.clearInterval(heartbeatTimer);
    heartbeatTimer = null;
  }

  async function heartbeat() {
    if (!current) return;
    const item = current;
    try {
      const { data } = await api("POST", urls.heartbeat(item.assignment.id));
      item.assignment.expires_at = data.expires_at;
    } catch (error) {
      if (current === item) toast(error.detail);
    }
  }

  /* ------------------------------------------------------------ render */

  function show(data) {
    renderProgress(data.progress);
    root.classList.remove("is-loading");
    ui.error.hidden = true;

    if (!data.assignment) {
      current = null;
      ui.task.hidden = true;
      ui.empty.hidden = false;
      ui.emptySummary.textContent =
        "You have labelled " + doneTotal + " item" + (doneTotal === 1 ? "" : "s") +
        " in this project. New items appear here when they are imported.";
      root.dataset.assignmentId = "";
      return;
    }

    const assignment = data.assignment;
    if (assignment.responses.length !== 2) {
      // Ranking items (3+ responses) need a different control; never show a partial item as a pair.
      showLoadError({ detail: "This item has " + assignment.responses.length + " responses; this workbench only labels pairs." });
      return;
    }
    current = { assignment: assignment, clientId: newClientId(), clock: new ActiveClock(), strength: null };
    renderConversation(assignment.conversation);
    renderResponses(assignment.responses);
    ui.rationale.value = "";
    autosize(ui.rationale);
    renderStrength();
    ui.empty.hidden = true;
    ui.task.hidden = false;
    // Set last: tests (and anything else watching) read the new item once the id changes.
    root.dataset.assignmentId = String(assignment.id);
    startHeartbeat();
  }

  function showLoadError(error) {
    root.classList.remove("is-loading");
    current = null;
    ui.task.hidden = true;
    ui.empty.hidden = true;
    ui.error.hidden = false;
    ui.errorDetail.textContent = error.detail;
    root.dataset.assignmentId = "";
    toast(error.detail);
  }

  function renderProgress(progress) {
    if (!progress) return;
    doneTotal = progress.done_total;
    ui.progress.textContent = progress.done_today + " done today · " + progress.remaining + " remaining";
    ui.progress.title = progress.done_total + " labelled in total";
  }

  const ROLE_NAMES = { user: "User", assistant: "Assistant", system: "System" };

  function renderConversation(conversation) {
    const messages = conversation.map((message) => {
      const role = Object.prototype.hasOwnProperty.call(ROLE_NAMES, message.role) ? message.role : "other";
      const body = el("div", { className: "msg__body md" });
      // Sanitised on the server (annotation.rendering): the one place HTML from the API is trusted.
      body.innerHTML = message.html;
      return el("div", { className: "msg msg--" + role }, [
        el("div", { className: "msg__role" }, ROLE_NAMES[role] || message.role),
        body,
      ]);
    });
    ui.conversation.replaceChildren(...messages);
    ui.conversation.parentElement.scrollTop = ui.conversation.parentElement.scrollHeight;
  }

  function renderResponses(responses) {
    for (const position of Object.keys(ui.responses)) {
      const response = responses.find((r) => r.position === position);
      const target = ui.responses[position];
      target.innerHTML = response ? response.html : ""; // sanitised server-side, see above
      target.scrollTop = 0;
    }
  }

  function renderStrength() {
    const selected = current ? current.strength : null;
    for (const button of ui.strengthButtons) {
      button.setAttribute("aria-checked", String(Number(button.dataset.strength) === selected));
    }
  }

  function flash(choice) {
    const button = root.querySelector('[data-choice="' + choice + '"]');
    if (!button) return;
    button.classList.add("is-chosen");
    window.setTimeout(() => button.classList.remove("is-chosen"), 350);
  }

  function autosize(textarea) {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, 160) + "px";
  }

  /* ---------------------------------------------------- panels + input */

  function toggleGuidelines(force) {
    const open = force === undefined ? ui.guidelines.hidden : force;
    ui.guidelines.hidden = !open;
    for (const button of document.querySelectorAll('[data-action="guidelines"][aria-controls]')) {
      button.setAttribute("aria-expanded", String(open));
    }
    try {
      window.sessionStorage.setItem("guidelines-open:" + projectId, open ? "1" : "");
    } catch (storageError) {
      /* private mode: the panel just starts closed next time */
    }
  }

  function toggleHelp(force) {
    const open = force === undefined ? ui.help.hidden : force;
    ui.help.hidden = !open;
  }

  function isTyping(target) {
    if (!target || !(target instanceof Element)) return false;
    return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  }

  function onKeydown(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (isTyping(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === "Escape") {
      toggleHelp(false);
      toggleGuidelines(false);
      return;
    }
    if (key === "?") {
      toggleHelp();
    } else if (key === "g") {
      toggleGuidelines();
    } else if (!ui.help.hidden || event.repeat) {
      // No judgement while the shortcut list covers the item, and a held key is not a second vote.
      return;
    } else if (key === "1" || key === "a") {
      choose("A");
    } else if (key === "2" || key === "b") {
      choose("B");
    } else if (key === "t") {
      choose("tie");
    } else if (key === "s") {
      skip();
    } else {
      return;
    }
    event.preventDefault();
  }

  function onClick(event) {
    const target = event.target.closest("[data-choice], [data-action], [data-strength]");
    if (!target) return;
    if (target.dataset.choice) {
      choose(target.dataset.choice);
    } else if (target.dataset.strength) {
      if (!current) return;
      const level = Number(target.dataset.strength);
      current.strength = current.strength === level ? null : level;
      renderStrength();
    } else if (target.dataset.action === "skip") {
      skip();
    } else if (target.dataset.action === "reload") {
      reload();
    } else if (target.dataset.action === "guidelines") {
      toggleGuidelines();
    } else if (target.dataset.action === "help") {
      toggleHelp();
    }
  }

  function onVisibilityChange() {
    if (!current) return;
    if (document.hidden) {
      current.clock.pause();
    } else {
      current.clock.resume();
      heartbeat(); // the interval may have been throttled while the tab was in the background
    }
  }

  document.addEventListener("keydown", onKeydown);
  document.addEventListener("click", onClick);
  document.addEventListener("visibilitychange", onVisibilityChange);
  ui.help.addEventListener("click", (event) => {
    if (event.target === ui.help) toggleHelp(false);
  });
  ui.rationale.addEventListener("input", () => autosize(ui.rationale));

  try {
    if (window.sessionStorage.getItem("guidelines-open:" + projectId)) toggleGuidelines(true);
  } catch (storageError) {
    /* ignore */
  }
  reload();
})();
