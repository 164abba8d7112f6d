/* Annotator workbench: the flow. Leases items, keeps the next one prefetched, sends
 * judgements through an in-order outbox, undoes the last one, and routes every key.
 *
 * Speed: while an item is on screen the following ones (up to two) are already leased and
 * built (`state.queue`, DOM made off-screen). A submit or skip swaps the prefetched item in at
 * once: the judgement goes into `state.outbox` and is sent in the background, and the
 * prefetch of the item after that starts in the same tick, so a switch never waits on the
 * network while an item is prefetched. With nothing prefetched the page loads the next item
 * in the foreground (the judgement still goes through the outbox). When the queue is short
 * and no prefetch can go out (every lease slot taken), the judgement itself asks for the
 * next item (`next` on submit/skip): it frees a slot and fills it in one round trip, instead
 * of a prefetch waiting for the judgement to land and then making a second one.
 *
 * Leases: the server lets an annotator hold MAX_OPEN_LEASES = 3 (annotation/assignment.py):
 * the item on screen, one prefetched, one whose judgement is in the outbox. While the
 * annotator reads, the outbox's slot holds a second prefetched item. Every item the page
 * holds counts (`held()`), and no lease is asked for at 3: the server answers that with
 * "nothing" too, which must never read as "done". When judgements pile up (a slow server)
 * the prefetch waits for a slot; `data-lease-waits` counts those waits. An undo reopens a
 * lease without asking (label_undo), so right after one the page may hold 4 until it is
 * back under 3; it asks for nothing meanwhile.
 *
 * Outbox: sent one at a time, in order. 2xx settles (progress, undo, the reward model's verdict
 * where the project reveals it: after the submit, never before); 409/404 (lease lost,
 * item gone) are reported and dropped; any other 4xx (the server refused the answer)
 * brings the item back on screen with its errors; a network error, 5xx, 408/429 or a lost
 * session is retried with backoff, with the same body and client_id, so the server stores
 * it at most once. While one is retrying the toolbar says "N unsaved, retrying" and leaving
 * the page asks first (also while any judgement is still on its way).
 *
 * Markers for tests and the benchmark (benchmarks/workbench.py): `data-last-switch-ms`
 * (keypress to next item laid out), `data-queue` (prefetched items), `data-pending`
 * (judgements not yet stored), `data-unsaved` (retrying); and a `workbench:shown` event
 * {assignmentId, at, prefetched} each time an item is shown. `?prefetch=0|1|2` sets the
 * prefetch depth, for diagnostics (0: the benchmark's no-prefetch baseline).
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

  const { api, toast, ApiError } = window.Studio;
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

  // annotation.assignment.MAX_OPEN_LEASES, from the page: the server answers "nothing" past it.
  const LEASE_LIMIT = config.max_open_leases;
  // Items kept prefetched, as far as the lease budget allows. Two while the annotator reads
  // (screen + 2 = 3 leases); on a key the submit takes the third slot, so one stays prefetched
  // and the refill waits for that submit to land. The spare item absorbs a slow answer (a
  // busy server, a long round trip) that would otherwise show as a wait on the next key.
  // `?prefetch=0|1|2` overrides it for diagnostics (0 = the benchmark's baseline).
  const PREFETCH_DEPTH = (() => {
    const asked = new URLSearchParams(window.location.search).get("prefetch");
    return asked !== null && /^[0-2]$/.test(asked) ? Number(asked) : 2;
  })();
  const RETRY_FIRST_MS = 500;
  const RETRY_MAX_MS = 10000;
  // A judgement with no answer by then is treated as lost and sent again (same client_id, so
  // harmless if the first one did land): a hung connection must not hold the outbox forever.
  const SUBMIT_TIMEOUT_MS = 15000;

  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const ui = {
    root: root,
    task: region("task"),
    conversation: region("conversation"),
    responses: region("responses"),
    rationale: region("rationale"),
    progress: root.querySelector('[data-testid="progress"]'),
    unsaved: root.querySelector('[data-testid="unsaved"]'),
    empty: root.querySelector('[data-testid="empty-state"]'),
    emptySummary: region("empty-summary"),
    error: region("error"),
    errorDetail: region("error-detail"),
    undoBar: root.querySelector('[data-testid="undo-bar"]'),
    undoText: region("undo-text"),
    undoTime: region("undo-time"),
    undoButton: root.querySelector('[data-testid="undo"]'),
    verdict: region("model-verdict"),
    guidelines: document.getElementById("guidelines"),
    help: document.getElementById("help"),
    skipDialog: document.getElementById("skip-dialog"),
    skipOther: document.querySelector('#skip-dialog [data-region="skip-other"]'),
  };

  const state = {
    current: null, // the item on screen (null while the next one loads in the foreground)
    queue: [], // prefetched items, leases held, next first
    outbox: [], // judgements not stored yet, oldest first: {item, kind, body, attempts, sending, error, timer}
    prefetching: null, // the prefetch in flight, if any
    refilling: false, // the outbox send in flight also leases the next item (`next`)
    exhausted: false, // the last prefetch found nothing; retried when a new item is shown
    busy: false, // a blocking task (foreground load, undo) is running
    lastSaved: null, // {labelId, item, savedAt}: what U undoes
    progressEpoch: 0, // bumped by every stored judgement/undo: older progress figures are stale
    waiters: [], // resolvers woken on every outbox change
    leaseWaits: 0,
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

  function present(item, startedAt, prefetched) {
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
    root.dispatchEvent(new CustomEvent("workbench:shown", {
      bubbles: true,
      detail: { assignmentId: item.assignment.id, at: performance.now(), prefetched: Boolean(prefetched) },
    }));
    updateMarkers();
    schedulePrefetch();
  }

  /** `paused`: the server said the project is paused (next-item's `paused`), not that the queue is empty. */
  function showEmpty(paused) {
    if (state.current) state.current.clock.pause();
    state.current = null;
    state.paused = Boolean(paused);
    root.classList.remove("is-loading");
    ui.task.hidden = true;
    ui.error.hidden = true;
    ui.empty.hidden = false;
    ui.empty.dataset.paused = String(state.paused);
    ui.empty.querySelector("h2").textContent = state.paused ? "This project is paused" : "All done — nothing left to label";
    ui.empty.querySelector(".wb-empty__icon").textContent = state.paused ? "❚❚" : "✓";
    renderEmptySummary();
    root.dataset.assignmentId = "";
  }

  function renderEmptySummary() {
    const done = "You have labelled " + state.doneTotal + " item" + (state.doneTotal === 1 ? "" : "s") + " in this project.";
    ui.emptySummary.textContent = state.paused
      ? "An admin has paused it: no new items are handed out until it resumes. " + done
      : done + " New items appear here when they are imported.";
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

  /** `epoch`: the progressEpoch when the request was sent; figures older than a stored judgement are dropped. */
  function renderProgress(progress, epoch) {
    if (!progress || (epoch !== undefined && epoch !== state.progressEpoch)) return;
    state.doneTotal = progress.done_total;
    ui.progress.textContent = progress.done_today + " done today · " + progress.remaining + " remaining";
    ui.progress.title = progress.done_total + " labelled in total";
    if (!ui.empty.hidden) renderEmptySummary();
  }

  function updateMarkers() {
    root.dataset.queue = String(state.queue.length);
    root.dataset.pending = String(state.outbox.length);
    root.dataset.leaseWaits = String(state.leaseWaits);
    const failing = state.outbox.find((entry) => entry.error);
    root.dataset.unsaved = failing ? String(state.outbox.length) : "0";
    if (!ui.unsaved) return;
    ui.unsaved.hidden = !failing;
    if (failing) {
      const count = state.outbox.length;
      ui.unsaved.textContent = count + " unsaved, retrying…";
      ui.unsaved.title = failing.error.detail + " Your answers are kept and sent again; keep this page open.";
    }
  }

  function autosize(textarea) {
    if (!textarea) return;
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, 160) + "px";
  }

  /* ---------------------------------------------------------------- leases */

  /** Every assignment this page holds a lease on: on screen, prefetched, in the outbox. */
  function heldIds() {
    return [state.current]
      .concat(state.queue, state.outbox.map((entry) => entry.item))
      .filter(Boolean)
      .map((item) => item.assignment.id);
  }

  /** Leases held or being asked for; never ask the server for more than LEASE_LIMIT. */
  function held() {
    return heldIds().length + (state.prefetching ? 1 : 0);
  }

  /** Resolves at the next outbox change (an entry stored, dropped, back on screen or failing). */
  function outboxChanged() {
    return new Promise((resolve) => state.waiters.push(resolve));
  }

  function notifyOutbox() {
    const waiters = state.waiters;
    state.waiters = [];
    for (const resolve of waiters) resolve();
    updateMarkers();
  }

  function outboxFailing() {
    return state.outbox.some((entry) => entry.error);
  }

  /** Waits until the outbox is empty; false if an entry is failing (offline) instead. */
  async function drained() {
    while (state.outbox.length && !outboxFailing()) await outboxChanged();
    return !state.outbox.length;
  }

  /**
   * Leases an item. `exclude`: everything the page holds, so the server does not answer with
   * one of those (with nothing held, it returns our open lease first: reload-safe).
   * Resolves with {data, epoch}.
   */
  async function fetchNext(exclude) {
    for (let attempt = 0; ; attempt += 1) {
      const epoch = state.progressEpoch;
      try {
        const { data } = await api("POST", urls.next(), { exclude: exclude });
        return { data: data, epoch: epoch };
      } catch (error) {
        // 409: every candidate was being claimed by others ("ask again"); 503: the database
        // is restarting. Both pass within moments, so ask again before showing an error.
        if ((error.status !== 409 && error.status !== 503) || attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  /**
   * Lease and build the item after this one while the annotator reads. Runs as soon as an
   * item is shown and whenever a lease slot frees up; skipped while every slot is taken
   * (judgements piling up in the outbox), which `data-lease-waits` counts.
   */
  function schedulePrefetch() {
    if (state.prefetching || state.exhausted || !state.current || coming() >= PREFETCH_DEPTH) return;
    if (held() >= LEASE_LIMIT) {
      state.leaseWaits += 1;
      updateMarkers();
      return; // a stored judgement frees a slot and calls again
    }
    state.prefetching = (async () => {
      try {
        root.dataset.prefetch = "loading";
        const { data, epoch } = await fetchNext(heldIds());
        if (data.assignment && !heldIds().includes(data.assignment.id)) {
          state.queue.push(items.create(data.assignment, config, format));
        } else if (!data.assignment) {
          state.exhausted = true;
        }
        renderProgress(data.progress, epoch);
      } catch (error) {
        // Only an optimisation: the next switch falls back to loading in the foreground.
        state.exhausted = true;
      } finally {
        state.prefetching = null;
        root.dataset.prefetch = "done";
        updateMarkers();
      }
      schedulePrefetch(); // a deeper queue, or a slot that freed while this one was out
    })();
  }

  /** Items prefetched or on their way: the queue, a prefetch, a judgement that leases the next. */
  function coming() {
    return state.queue.length + (state.refilling ? 1 : 0);
  }

  /** Whether the judgement about to be sent should also lease the next item. */
  function wantsRefill() {
    return PREFETCH_DEPTH > 0 && !state.exhausted && !state.prefetching && coming() < PREFETCH_DEPTH;
  }

  /** Takes the lease a judgement brought back (`next`) into the queue, as a prefetch would. */
  function acceptRefill(next) {
    if (!next) return; // not offered (the project is no longer ours: the next load says so)
    if (!next.assignment) {
      state.exhausted = true;
    } else if (!heldIds().includes(next.assignment.id)) {
      state.queue.push(items.create(next.assignment, config, format));
    }
  }

  /** Shows the next item: the prefetched one, else one leased in the foreground. */
  async function advance(startedAt) {
    if (!state.queue.length && state.prefetching) await state.prefetching;
    // A judgement on its way is bringing the next item: wait for it rather than lease another.
    while (!state.queue.length && state.refilling && !state.current) await outboxChanged();
    if (state.current) return; // a refused judgement came back on screen meanwhile
    if (state.queue.length) {
      present(state.queue.shift(), startedAt, false);
      return;
    }
    while (held() >= LEASE_LIMIT) {
      state.leaseWaits += 1;
      await outboxChanged(); // every slot is an unsent judgement: wait for one to land
      if (state.current) return;
    }
    let response;
    try {
      response = await fetchNext(heldIds());
    } catch (error) {
      if (!state.current) showLoadError(error);
      return;
    }
    const { data, epoch } = response;
    renderProgress(data.progress, epoch);
    if (data.assignment) {
      const item = items.create(data.assignment, config, format);
      if (state.current) state.queue.push(item);
      else present(item, startedAt, false);
      return;
    }
    // Nothing left for us, but a judgement still on its way may come back (refused), or
    // bring the last item (`next`, racing this load): say "done" only once they have all
    // landed, with the figures they brought, and nothing came.
    await drained();
    if (state.current) return;
    if (state.queue.length) present(state.queue.shift(), startedAt, false);
    else showEmpty(data.paused);
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

  /** Renews every lease we hold: on screen, prefetched, and judgements waiting to be retried. */
  function heartbeatAll() {
    const waiting = state.outbox.filter((entry) => !entry.sending).map((entry) => entry.item);
    for (const item of [state.current].concat(state.queue, waiting)) {
      if (item) heartbeat(item);
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
        updateMarkers();
        schedulePrefetch();
      } else if (item === state.current && !item.leaseLost) {
        item.leaseLost = true;
        toast(error.detail);
      }
      // An outbox entry's submit will hear the same 409 and report it.
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

  /**
   * Puts a submit or skip in the outbox and moves on: to the prefetched item at once, or
   * (nothing prefetched) to one loaded in the foreground. Never waits for the judgement.
   */
  function dispatch(item, kind, body, startedAt) {
    item.clock.pause();
    // In the outbox before the switch, so the prefetch that the switch starts excludes it.
    state.outbox.push({ item: item, kind: kind, body: body, attempts: 0, sending: false, error: null, timer: null });
    if (state.queue.length) {
      present(state.queue.shift(), startedAt, true);
    } else {
      state.current = null; // the old item stays visible, dimmed, until the next one is in
      exclusive(() => advance(startedAt));
    }
    pump();
  }

  /** Sends the oldest judgement unless one is already on its way or waiting to be retried. */
  function pump() {
    updateMarkers();
    const entry = state.outbox[0];
    if (!entry || entry.sending || entry.timer) return;
    entry.sending = true;
    entry.attempts += 1;
    const url = entry.kind === "skip" ? urls.skip(entry.item.assignment.id) : urls.submit(entry.item.assignment.id);
    // Same body every attempt: same client_id, so a retry of a submit that did land is not a second label.
    // Whether to lease the next item too is decided afresh each attempt; a retry of one that
    // did land gets back the lease its first attempt took (the server returns open leases first).
    const body = Object.assign({}, entry.body);
    entry.refills = wantsRefill();
    if (entry.refills) {
      body.next = { exclude: heldIds().filter((id) => id !== entry.item.assignment.id) };
      state.refilling = true;
    }
    let answered = false;
    const once = (outcome) => {
      if (answered) return; // the timeout gave up on this attempt; its late answer changes nothing
      answered = true;
      window.clearTimeout(timeout);
      finish(entry, outcome);
    };
    const timeout = window.setTimeout(
      () => once({ error: new ApiError(0, { detail: "The server did not answer within " + SUBMIT_TIMEOUT_MS / 1000 + " s." }) }),
      SUBMIT_TIMEOUT_MS
    );
    api("POST", url, body).then(
      (response) => once({ data: response.data }),
      (error) => once({ error: error })
    );
  }

  function retryable(error) {
    // 0: no answer (offline, connection dropped); 5xx: the server or its database hiccuped;
    // 401/403: the session ended (signing in again in another tab lets the retry through).
    return error.status === 0 || error.status >= 500 || [401, 403, 408, 429].includes(error.status);
  }

  function finish(entry, outcome) {
    entry.sending = false;
    if (entry.refills) state.refilling = false;
    if (outcome.error && retryable(outcome.error)) {
      const first = !entry.error;
      entry.error = outcome.error;
      const delay = Math.min(RETRY_FIRST_MS * 2 ** (entry.attempts - 1), RETRY_MAX_MS);
      entry.timer = window.setTimeout(() => retryNow(entry), delay);
      if (first) toast("Not saved yet: " + outcome.error.detail + " Retrying; your answer is kept.", "error", 4000);
      notifyOutbox();
      return;
    }
    state.outbox.splice(state.outbox.indexOf(entry), 1);
    state.progressEpoch += 1;
    settle(entry.item, entry.kind, outcome);
    notifyOutbox();
    schedulePrefetch(); // a lease slot is free again
    pump();
  }

  function retryNow(entry) {
    if (entry.timer) window.clearTimeout(entry.timer);
    entry.timer = null;
    pump();
  }

  /** Coming back online (or to the tab): retry at once rather than at the end of the backoff. */
  function retryOutbox() {
    const head = state.outbox[0];
    if (head && head.timer) retryNow(head);
  }

  /** Deals with the server's answer to a submit/skip that is not retried. */
  function settle(item, kind, outcome) {
    if (!outcome.error) {
      acceptRefill(outcome.data.next);
      renderProgress(outcome.data.progress);
      if (kind === "submit") offerUndo(item, outcome.data.label.id, outcome.data.model_verdict);
      else toast("Skipped.", "info", 1500);
      return;
    }
    const error = outcome.error;
    const verb = kind === "skip" ? "Not skipped: " : "Not saved: ";
    // 409: the lease lapsed and someone else may hold the item; 404: it is gone. Either way
    // this judgement cannot be stored, so move on.
    if (error.status === 409 || error.status === 404) {
      toast(verb + error.detail);
      return;
    }
    // Refused (validation): the item comes back with the errors and keeps its client_id, so
    // fixing and submitting again stores it exactly once.
    item.errors = error.fields || {};
    if (state.current) state.queue.unshift(state.current);
    present(item);
    toast(verb + error.detail + " The item is back on screen.");
    fields.renderErrors(item, root);
    fields.focusFirstError(item, ui);
  }

  let undoTimer = null;

  /**
   * `verdict`: the submit's `model_verdict` (null unless the project reveals it), about the item
   * just saved, which is already off screen: the page never has it while the annotator decides.
   */
  function offerUndo(item, labelId, verdict) {
    // A label whose verdict was seen cannot be undone (the server refuses too): a new answer
    // would follow the model's, the bias the verdict is kept back to avoid.
    state.lastSaved = { labelId: labelId, item: item, savedAt: Date.now(), verdictSeen: Boolean(verdict) };
    ui.undoText.textContent = "Saved: " + format.describe(item);
    showVerdict(item, verdict);
    ui.undoButton.hidden = Boolean(verdict);
    ui.undoTime.hidden = Boolean(verdict);
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

  /** "Reward model v3: preferred B (72 %) — agrees with you" / "— you chose A"; positions only, as the annotator saw them. */
  function describeVerdict(item, verdict) {
    const model = "Reward model v" + verdict.version + ": ";
    if (verdict.probability === 0.5) return model + "no preference between " + verdict.order.slice(0, 2).join(" and ");
    const said = model + "preferred " + verdict.order[0] + " (" + Math.round(verdict.probability * 100) + " %)";
    if (verdict.agrees === true) return said + " — agrees with you";
    if (verdict.agrees !== false) return said; // a tie or "both bad": nothing to agree with
    const answer = format.answer(item);
    const mine = answer.choice ? answer.choice : answer.ranking[0].join(" = ");
    return said + (answer.choice ? " — you chose " : " — you ranked first ") + mine;
  }

  function showVerdict(item, verdict) {
    ui.verdict.hidden = !verdict;
    ui.verdict.textContent = verdict ? describeVerdict(item, verdict) : "";
    ui.verdict.title = verdict ? "The model's order, best first: " + verdict.order.join(" > ") : "";
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
      // A judgement still in the outbox becomes the one to undo once it lands.
      if (!(await drained())) {
        toast("Not yet: " + state.outbox.length + " unsaved, retrying. Undo works once they are saved.", "info");
        return;
      }
      // A prefetch sent before the undo lands could be answered with the reopened lease.
      if (state.prefetching) await state.prefetching;
      const saved = state.lastSaved;
      if (!saved) {
        toast("Nothing to undo: only the last submit, within " + config.undo_seconds + " s.", "info");
        return;
      }
      if (saved.verdictSeen) {
        toast("You have seen the reward model's verdict on that label, so it cannot be undone.", "info");
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
      state.progressEpoch += 1;
      renderProgress(data.progress);
      if (state.current) state.queue.unshift(state.current);
      present(items.create(data.assignment, config, format, { answer: saved.item.answer, ms: saved.item.clock.ms() }));
      toast("Label taken back: change it and submit again.", "info", 2500);
    });
  }

  function onVisibilityChange() {
    if (document.hidden) {
      if (state.current) state.current.clock.pause();
      return;
    }
    if (state.current) state.current.clock.resume();
    heartbeatAll(); // the interval may have been throttled while the tab was in the background
    retryOutbox();
  }

  document.addEventListener("visibilitychange", onVisibilityChange);
  window.addEventListener("online", retryOutbox);
  window.addEventListener("beforeunload", (event) => {
    // A judgement not stored yet would be lost with the page.
    if (state.outbox.length) {
      event.preventDefault();
      event.returnValue = "";
    }
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
