/* Annotator workbench: the flow. Leases items, keeps the next one prefetched, sends
 * judgements, undoes the last one, and routes every key.
 *
 * Speed: while an item is on screen the following one is already leased and built
 * (`state.queue`). A submit then swaps the prefetched item in at once and sends the label
 * in the background; if the server refuses it (400, network) the item comes back with the
 * errors shown; 409/404 (lease lost, item gone) are reported and the flow moves on. With
 * nothing prefetched, the submit is sent first and the page waits, as before.
 * `#workbench[data-last-switch-ms]` records keypress-to-next-item-laid-out for the last
 * switch; `data-queue` counts prefetched items and `data-pending` submits still in flight.
 *
 * Idempotency: each item on screen gets one client_id (a UUID). A submit retried after a
 * network error sends the same id, so the server stores at most one label.
 *
 * Pieces (workbench/): items.js (item model and DOM, diff display, synced scroll),
 * fields.js (ratings, flags, rationale, field errors), pairwise.js and ranking.js (the
 * format's controls, same interface), input.js (keys, clicks, panels), diff.js (word LCS).
 */
(function () {
  "use strict";

  const { api, toast } = window.Studio;
  const Workbench = window.Workbench;
  const items = Workbench.items;
  const fields = Workbench.fields;
  const root = document.getElementById("workbench");
  if (!root) return;

  const config = JSON.parse(document.getElementById("workbench-config").textContent);
  const apiRoot = root.dataset.apiRoot;
  const projectId = root.dataset.projectId;
  const urls = {
    next: () => apiRoot + "projects/" + projectId + "/next-item/",
    submit: (id) => apiRoot + "assignments/" + id + "/submit/",
    skip: (id) => apiRoot + "assignments/" + id + "/skip/",
    heartbeat: (id) => apiRoot + "assignments/" + id + "/heartbeat/",
    undo: (labelId) => apiRoot + "labels/" + labelId + "/undo/",
  };

  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const ui = {
    root: root,
    task: region("task"),
    conversation: region("conversation"),
    responses: region("responses"),
    rationale: region("rationale"),
    progress: root.querySelector('[data-testid="progress"]'),
    empty: root.querySelector('[data-testid="empty-state"]'),
    emptySummary: region("empty-summary"),
    error: region("error"),
    errorDetail: region("error-detail"),
    undoBar: root.querySelector('[data-testid="undo-bar"]'),
    undoText: region("undo-text"),
    undoTime: region("undo-time"),
    guidelines: document.getElementById("guidelines"),
    help: document.getElementById("help"),
    skipDialog: document.getElementById("skip-dialog"),
    skipOther: document.querySelector('#skip-dialog [data-region="skip-other"]'),
  };

  const state = {
    current: null, // the item on screen
    queue: [], // prefetched items, leases held, next first
    jobs: new Set(), // submit/skip requests in flight
    prefetching: null, // the prefetch in flight, if any
    exhausted: false, // the last prefetch found nothing; retried when a new item is shown
    busy: false, // a blocking request (load, undo) is running
    lastSaved: null, // {labelId, item, savedAt}: what U undoes
    doneTotal: 0,
    diff: false,
    sync: false,
  };

  const format = Workbench.formats[config.label_format]({
    root: root,
    responsesRegion: ui.responses,
    toast: toast,
    submit: submit,
    clearError: fields.clearError,
    onFocusChange: (item) => {
      if (state.diff && item === state.current) items.applyDiff(item, true, format.diffBase(item));
    },
  });

  /* ---------------------------------------------------------------- showing items */

  function present(item, startedAt) {
    if (state.current && state.current !== item) state.current.clock.pause();
    state.current = item;
    // Never keep a second copy of the item on screen in the queue (an answer can race a reopen).
    state.queue = state.queue.filter((queued) => queued.assignment.id !== item.assignment.id);
    state.exhausted = false;
    if (document.activeElement && root.contains(document.activeElement)) document.activeElement.blur();
    items.mount(item, ui);
    format.present(item);
    if (state.diff) items.applyDiff(item, true, format.diffBase(item));
    autosize(ui.rationale);
    root.classList.remove("is-loading");
    ui.error.hidden = true;
    ui.empty.hidden = true;
    ui.task.hidden = false;
    item.clock.resume();
    // Set last: tests (and anything else watching) read the new item once the id changes.
    root.dataset.assignmentId = String(item.assignment.id);
    if (startedAt !== undefined) {
      void root.offsetHeight; // include style and layout of the new item, not just the DOM swap
      root.dataset.lastSwitchMs = (performance.now() - startedAt).toFixed(1);
    }
    updateQueueMarker();
    schedulePrefetch();
  }

  function showEmpty() {
    if (state.current) state.current.clock.pause();
    state.current = null;
    root.classList.remove("is-loading");
    ui.task.hidden = true;
    ui.error.hidden = true;
    ui.empty.hidden = false;
    ui.emptySummary.textContent =
      "You have labelled " + state.doneTotal + " item" + (state.doneTotal === 1 ? "" : "s") +
      " in this project. New items appear here when they are imported.";
    root.dataset.assignmentId = "";
  }

  function showLoadError(error) {
    state.current = null;
    root.classList.remove("is-loading");
    ui.task.hidden = true;
    ui.empty.hidden = true;
    ui.error.hidden = false;
    ui.errorDetail.textContent = error.detail;
    root.dataset.assignmentId = "";
    toast(error.detail);
  }

  function renderProgress(progress) {
    if (!progress) return;
    state.doneTotal = progress.done_total;
    ui.progress.textContent = progress.done_today + " done today · " + progress.remaining + " remaining";
    ui.progress.title = progress.done_total + " labelled in total";
  }

  function updateQueueMarker() {
    root.dataset.queue = String(state.queue.length);
  }

  function autosize(textarea) {
    if (!textarea) return;
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, 160) + "px";
  }

  /* ---------------------------------------------------------------- leases */

  function heldIds() {
    return [state.current].concat(state.queue).filter(Boolean).map((item) => item.assignment.id);
  }

  /** Leases an item. Without `exclude` the server returns our open lease first (reload-safe). */
  async function fetchNext(exclude) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const { data } = await api("POST", urls.next(), { exclude: exclude || [] });
        return data;
      } catch (error) {
        // 409: every candidate was being claimed by others ("ask again"); 503: the database
        // is restarting. Both pass within moments, so ask again before showing an error.
        if ((error.status !== 409 && error.status !== 503) || attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  function settledJobs() {
    return Promise.all(Array.from(state.jobs));
  }

  /**
   * Lease and build the item after this one while the annotator reads. Waits for submits in
   * flight: the server allows two open leases per annotator, and an unsent label still holds one.
   */
  function schedulePrefetch() {
    if (state.prefetching || state.exhausted || !state.current || state.queue.length) return;
    state.prefetching = (async () => {
      try {
        await settledJobs();
        if (!state.current || state.queue.length) return;
        root.dataset.prefetch = "loading";
        const data = await fetchNext(heldIds());
        if (data.assignment && !heldIds().includes(data.assignment.id)) {
          state.queue.push(items.create(data.assignment, config, format));
        } else if (!data.assignment) {
          state.exhausted = true;
        }
        renderProgress(data.progress);
      } catch (error) {
        // Only an optimisation: the next submit falls back to loading in the foreground.
        state.exhausted = true;
      } finally {
        state.prefetching = null;
        root.dataset.prefetch = "done";
        updateQueueMarker();
      }
    })();
  }

  /** Loads the next item in the foreground (nothing prefetched). */
  async function advance(startedAt) {
    await settledJobs();
    if (!state.queue.length && state.prefetching) await state.prefetching;
    if (state.queue.length) {
      present(state.queue.shift(), startedAt);
      return;
    }
    let data;
    try {
      data = await fetchNext([]);
    } catch (error) {
      showLoadError(error);
      return;
    }
    renderProgress(data.progress);
    if (data.assignment) present(items.create(data.assignment, config, format), startedAt);
    else showEmpty();
  }

  /** Runs one blocking task at a time; a key pressed meanwhile is dropped. */
  async function exclusive(task) {
    if (state.busy) return;
    state.busy = true;
    root.classList.add("is-busy");
    root.setAttribute("aria-busy", "true");
    try {
      await task();
    } finally {
      state.busy = false;
      root.classList.remove("is-busy");
      root.removeAttribute("aria-busy");
    }
  }

  function startHeartbeat() {
    window.setInterval(heartbeatAll, config.heartbeat_ms);
  }

  /** Renews every lease we hold: the item on screen and the prefetched ones. */
  function heartbeatAll() {
    for (const item of [state.current].concat(state.queue)) {
      if (item && !item.sending) heartbeat(item);
    }
  }

  async function heartbeat(item) {
    try {
      const { data } = await api("POST", urls.heartbeat(item.assignment.id));
      item.assignment.expires_at = data.expires_at;
    } catch (error) {
      if (error.status !== 409 && error.status !== 404) return; // transient; the next beat retries
      const queued = state.queue.indexOf(item);
      if (queued !== -1) {
        // A prefetched lease lapsed and someone took the item: quietly fetch another.
        state.queue.splice(queued, 1);
        updateQueueMarker();
        schedulePrefetch();
      } else if (item === state.current && !item.leaseLost) {
        item.leaseLost = true;
        toast(error.detail);
      }
    }
  }

  /* ---------------------------------------------------------------- submit, skip, undo */

  /** Called by the format controls once the annotator has chosen. */
  function submit(item, startedAt) {
    if (item !== state.current || state.busy) return;
    const errors = Object.assign({}, format.validate(item), fields.validate(item, config));
    if (Object.keys(errors).length) {
      item.errors = errors;
      fields.renderErrors(item, root);
      fields.focusFirstError(item, ui);
      toast("Not submitted yet: fix the fields marked in red.", "error", 3000);
      return;
    }
    const body = Object.assign(format.answer(item), fields.extras(item, config), {
      seconds_spent: item.clock.seconds(),
      client_id: item.clientId,
    });
    dispatch(item, "submit", body, startedAt);
  }

  function skip(item, reason, startedAt) {
    if (item !== state.current || state.busy) return;
    dispatch(item, "skip", { reason: reason }, startedAt);
  }

  /** Sends a submit or skip; switches at once when the next item is ready. */
  function dispatch(item, kind, body, startedAt) {
    item.clock.pause();
    item.sending = true;
    const job = send(item, kind, body);
    if (state.queue.length) {
      present(state.queue.shift(), startedAt);
      job.then((outcome) => settle(item, kind, outcome, false));
    } else {
      exclusive(async () => {
        const outcome = await job;
        if (settle(item, kind, outcome, true)) await advance(startedAt);
      });
    }
  }

  /** Resolves with {data} or {error}; never rejects. Tracked so prefetch and undo can wait for it. */
  function send(item, kind, body) {
    const url = kind === "skip" ? urls.skip(item.assignment.id) : urls.submit(item.assignment.id);
    const job = api("POST", url, body).then(
      (response) => ({ data: response.data }),
      (error) => ({ error: error })
    );
    state.jobs.add(job);
    root.dataset.pending = String(state.jobs.size);
    job.then(() => {
      state.jobs.delete(job);
      root.dataset.pending = String(state.jobs.size);
      item.sending = false;
      schedulePrefetch();
    });
    return job;
  }

  /**
   * Deals with the server's answer to a submit/skip. Returns true when the item is done with
   * (stored, or lost for good) and false when it stays (or comes back) on screen.
   */
  function settle(item, kind, outcome, blocking) {
    if (!outcome.error) {
      if (kind === "submit") {
        renderProgress(outcome.data.progress);
        offerUndo(item, outcome.data.label.id);
      } else {
        toast("Skipped.", "info", 1500);
      }
      return true;
    }
    const error = outcome.error;
    const verb = kind === "skip" ? "Not skipped: " : "Not saved: ";
    // 409: the lease lapsed and someone else may hold the item; 404: it is gone. Either way
    // this judgement cannot be stored, so move on. Anything else (validation, network) keeps
    // the item and its client_id, so fixing or retrying stores it exactly once.
    if (error.status === 409 || error.status === 404) {
      toast(verb + error.detail);
      return true;
    }
    item.errors = error.fields || {};
    if (!blocking) {
      if (state.current) state.queue.unshift(state.current);
      present(item);
      toast(verb + error.detail + " The item is back on screen.");
    } else {
      item.clock.resume();
      toast(verb + error.detail);
    }
    fields.renderErrors(item, root);
    fields.focusFirstError(item, ui);
    return false;
  }

  let undoTimer = null;

  function offerUndo(item, labelId) {
    state.lastSaved = { labelId: labelId, item: item, savedAt: Date.now() };
    ui.undoText.textContent = "Saved: " + format.describe(item);
    ui.undoBar.hidden = false;
    window.clearInterval(undoTimer);
    const tick = () => {
      const left = Math.ceil(config.undo_seconds - (Date.now() - state.lastSaved.savedAt) / 1000);
      if (left <= 0) return hideUndo();
      ui.undoTime.textContent = left + " s";
    };
    tick();
    undoTimer = window.setInterval(tick, 1000);
  }

  function hideUndo() {
    window.clearInterval(undoTimer);
    undoTimer = null;
    ui.undoBar.hidden = true;
    state.lastSaved = null;
  }

  /** U: take back the last label; its item returns with the answers given, ready to change. */
  function undo() {
    return exclusive(async () => {
      await settledJobs(); // a submit still in flight becomes undoable once it lands
      // A prefetch sent before the undo lands could be answered with the reopened lease.
      if (state.prefetching) await state.prefetching;
      const saved = state.lastSaved;
      if (!saved) {
        toast("Nothing to undo: only the last submit, within " + config.undo_seconds + " s.", "info");
        return;
      }
      let data;
      try {
        ({ data } = await api("POST", urls.undo(saved.labelId)));
      } catch (error) {
        toast(error.detail);
        if (error.status === 409 || error.status === 404) hideUndo();
        return;
      }
      hideUndo();
      renderProgress(data.progress);
      if (state.current) state.queue.unshift(state.current);
      present(items.create(data.assignment, config, format, { answer: saved.item.answer, ms: saved.item.clock.ms() }));
      toast("Label taken back: change it and submit again.", "info", 2500);
    });
  }

  function onVisibilityChange() {
    if (!state.current) return;
    if (document.hidden) {
      state.current.clock.pause();
    } else {
      state.current.clock.resume();
      heartbeatAll(); // the interval may have been throttled while the tab was in the background
    }
  }

  document.addEventListener("visibilitychange", onVisibilityChange);
  window.addEventListener("beforeunload", (event) => {
    // A label still on its way would be lost with the page.
    if (state.jobs.size) event.preventDefault();
  });
  Workbench.input.install({
    root: root,
    ui: ui,
    state: state,
    format: format,
    projectId: projectId,
    flow: { skip: skip, undo: undo, reload: () => exclusive(advance), autosize: autosize },
  });
  startHeartbeat();
  exclusive(advance);
})();
