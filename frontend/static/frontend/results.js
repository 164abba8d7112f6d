/* Admin results page: the responses with the champion reward model's scores, a page at a time,
 * the champion's metrics, training runs and model versions.
 *
 * Live: the server pushes an event (GET .../events/, text/event-stream; training.events) when
 * the champion, its scoring, the newest version or the newest run changes, and once as each
 * stream opens; every event runs the refresh the poll runs, and while a stream is open nothing
 * polls (root.dataset.live = "push"). Without one (refused with 503 while the server's streams
 * are all in use, cut off, or no EventSource) the page polls scores and training runs every
 * POLL_MS (dataset.live = "polling") and tries a stream again after STREAM_RETRY_MS. The server
 * ends each stream after a while ("end") and the page opens the next at once. A hidden tab
 * closes its stream and stops polling, and catches up when shown again. The model versions
 * follow when the champion or a run changed, and every VERSIONS_MS in any case.
 *
 * The responses table shows one server page (keyset: the server's next/previous links) with each
 * response's rendered, sanitised Markdown; a refresh reloads only that page and rebuilds the
 * table (or the versions table) only when what it shows changed, so a table being read does not
 * jump on every refresh. Filters (model, score range, search) and the sort start again from the
 * first page; the pager says which rows of how many.
 *
 * Events on #results for the other cards of the page: "results:refreshed" ({championChanged,
 * versionsChanged}) after every refresh (polled or pushed), and every POLL_MS while pushed,
 * "results:versions" ({versions}) whenever the model versions changed. The leaderboard,
 * annotators and training-policy cards refresh themselves on the first, at their own rates.
 */
(function () {
  "use strict";

  const { api, toast, el, formatNumber, formatDate } = window.Studio;
  const root = document.getElementById("results");
  if (!root) return;

  const POLL_MS = 3000;
  const STREAM_RETRY_MS = 20000; // after a refused or broken stream: poll meanwhile, then try again
  const apiRoot = root.dataset.apiRoot;
  const projectId = root.dataset.projectId;
  const urls = {
    scores: apiRoot + "projects/" + projectId + "/scores/",
    runs: apiRoot + "projects/" + projectId + "/training-runs/",
    versions: apiRoot + "projects/" + projectId + "/model-versions/",
    events: apiRoot + "projects/" + projectId + "/events/",
  };

  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const ui = {
    championVersion: root.querySelector('[data-testid="champion-version"]'),
    championSub: region("champion-sub"),
    scoringError: region("champion-scoring-error"),
    accuracy: region("metric-accuracy"),
    pairs: region("metric-pairs"),
    loss: region("metric-loss"),
    extra: region("metric-extra"),
    latestRun: region("latest-run"),
    latestRunSub: region("latest-run-sub"),
    latestRunWaiting: region("latest-run-waiting"),
    responses: region("responses"),
    responsesSummary: region("responses-summary"),
    runs: region("runs"),
    versions: region("versions"),
    updated: region("updated"),
    trainButton: root.querySelector('[data-action="train"]'),
    sortButton: root.querySelector('[data-action="sort-score"]'),
    filters: region("responses-filters"),
    modelSelect: root.querySelector('[data-region="responses-filters"] [name="model"]'),
    previousButton: root.querySelector('[data-action="responses-previous"]'),
    nextButton: root.querySelector('[data-action="responses-next"]'),
    pageLabel: region("responses-page"),
  };

  const PAGE_SIZE = 50;
  const SEARCH_DEBOUNCE_MS = 300;
  let scoresKey = null; // what the responses table was last built from
  let championKey = null; // which champion, and whether it finished scoring: a change may mean new versions
  let lastScores = null;
  let runsKey = null; // statuses of the runs last seen; a change may mean a new model version
  let versionsKey = null; // what the versions table was last built from
  let versionsAt = 0; // when the versions were last requested (ms)
  const VERSIONS_MS = 15000;
  // The page shown: the sort ("prompt" | "-score" | "score"), the filters, and the cursor it was reached by.
  const view = { sort: "prompt", model: "", min_score: "", max_score: "", q: "", cursor: null, page: 1 };
  let scoresRequest = 0; // only the newest request's answer is shown (typing sends several)
  let modelsFor = null; // the response count the model list was loaded at; an import may add models
  let pollTimer = null;
  let polling = false;
  let refreshAgain = false; // an event or an action arrived during a refresh: run one more after it
  let stream = null; // the open EventSource, if any
  let streamTimer = null;
  const shownErrors = new Set();

  /** Toasts an error once until the same source succeeds again, so a 3-second poll does not spam. */
  function reportError(source, error) {
    const key = source + ":" + error.detail;
    if (shownErrors.has(key)) return;
    shownErrors.add(key);
    toast(error.detail);
  }

  function clearErrors(source) {
    for (const key of Array.from(shownErrors)) if (key.startsWith(source + ":")) shownErrors.delete(key);
  }

  /* ------------------------------------------------------------ scores */

  /** The scores URL for the page shown; `withModels` also asks for the model names. */
  function scoresUrl(withModels) {
    // html: rendered Markdown for the table; count: the filtered total for the pager.
    const params = new URLSearchParams({ page_size: String(PAGE_SIZE), sort: view.sort, html: "true", count: "true" });
    for (const name of ["model", "min_score", "max_score", "q"]) if (view[name] !== "") params.set(name, view[name]);
    if (view.cursor) params.set("cursor", view.cursor);
    if (withModels) params.set("include", "models");
    return urls.scores + "?" + params.toString();
  }

  /** Fetches the page shown; resolves to the data, or null when a newer request overtook it. */
  async function fetchScores() {
    const ticket = ++scoresRequest;
    const { data } = await api("GET", scoresUrl(modelsFor === null));
    return ticket === scoresRequest ? data : null;
  }

  /** Renders a scores answer; returns whether the champion changed (the versions may have too). */
  function renderScores(data) {
    const champion = data.champion;
    const summary = data.summary;
    lastScores = data;
    if (data.models) renderModelOptions(data.models, summary.responses);
    else if (modelsFor !== null && modelsFor !== summary.responses) modelsFor = null; // reload the names next time
    // The champion card is cheap and its scoring error may change between polls; the table is not.
    renderChampion(champion, summary.champion_scored, summary.responses);
    // While a new champion scores, the table keeps the previous champion's complete scores (the
    // server switches in one step when the new set is complete): say whose they are.
    const previousShown = champion && data.scores_version !== null && data.scores_version !== champion.version;
    ui.responsesSummary.textContent = summary.responses + " responses · " + summary.scored + " scored" +
      (previousShown ? " by v" + data.scores_version + " until v" + champion.version + " has scored every response" : "");
    renderPager(data);
    const key = JSON.stringify(view) + "|" + data.results.map((row) => row.response_id + "=" + row.score + "/" + row.top_probability +
      "/" + JSON.stringify(row.criterion_scores || {})).join(",");
    if (key !== scoresKey) {
      scoresKey = key;
      renderResponses();
    }
    const newChampionKey = champion ? champion.id + ":" + champion.scored + ":" + data.scores_version : "none";
    const changed = championKey !== null && newChampionKey !== championKey;
    const first = championKey === null;
    championKey = newChampionKey;
    return changed || first;
  }

  function renderModelOptions(models, responseCount) {
    modelsFor = responseCount;
    const chosen = ui.modelSelect.value;
    ui.modelSelect.replaceChildren(
      el("option", { value: "" }, "All models"),
      ...models.map((name) => el("option", { value: name }, name))
    );
    // A filter on a model that is no longer listed stays applied and visible.
    if (chosen && !models.includes(chosen)) ui.modelSelect.appendChild(el("option", { value: chosen }, chosen));
    ui.modelSelect.value = chosen;
  }

  /** The cursor of a next/previous link, or null. */
  function cursorOf(link) {
    return link ? new URL(link, window.location.href).searchParams.get("cursor") : null;
  }

  /** "Page 2 · 51–60 of 60": the rows shown and the filtered total (the server counts up to a cap). */
  function renderPager(data) {
    ui.previousButton.disabled = !data.previous;
    ui.nextButton.disabled = !data.next;
    if (!data.results.length && view.page === 1) {
      ui.pageLabel.textContent = "";
      return;
    }
    let text = "Page " + view.page;
    if (data.results.length) {
      // Keyset pages have no offset: rows are numbered from the page number, which holds while
      // the client walks one page at a time, as the pager does.
      const first = (view.page - 1) * PAGE_SIZE + 1;
      text += " · " + first + "–" + (first + data.results.length - 1);
      if (data.matching) text += " of " + (data.matching.capped ? "more than " : "") + data.matching.count;
    }
    ui.pageLabel.textContent = text;
  }

  /** Shows another page or view now, rather than at the next poll. */
  async function reloadScores() {
    let data;
    try {
      data = await fetchScores();
    } catch (error) {
      reportError("scores", error);
      return;
    }
    clearErrors("scores");
    if (data && renderScores(data)) loadVersions();
  }

  function goToPage(link, step) {
    const cursor = cursorOf(link);
    if (!cursor) return;
    view.cursor = cursor;
    view.page = Math.max(1, view.page + step);
    reloadScores();
  }

  /** A new sort or filter starts again from the first page. */
  function changeView(changes) {
    Object.assign(view, changes, { cursor: null, page: 1 });
    ui.sortButton.dataset.order = view.sort === "-score" ? "desc" : view.sort === "score" ? "asc" : "";
    reloadScores();
  }

  /** "64–77": an accuracy interval [low, high] in whole percent; "" when there is none. */
  function percentInterval(interval) {
    if (!Array.isArray(interval) || typeof interval[0] !== "number" || typeof interval[1] !== "number") return "";
    return Math.round(interval[0] * 100) + "–" + Math.round(interval[1] * 100);
  }

  function renderChampion(champion, scoredCount, responseCount) {
    ui.scoringError.hidden = !(champion && !champion.scored && champion.scoring_error);
    if (!ui.scoringError.hidden) {
      ui.scoringError.textContent =
        "Scoring failed (attempt " + champion.scoring_attempts + "): " + champion.scoring_error + " — retrying automatically";
      ui.scoringError.title = champion.scoring_error + "\nThe server retries a limited number of times (SCORING_MAX_ATTEMPTS).";
    }
    if (!champion) {
      ui.championVersion.textContent = "none";
      ui.championSub.textContent = "No model trained yet";
      ui.championSub.title = "";
      ui.accuracy.textContent = "—";
      ui.loss.textContent = "—";
      ui.pairs.textContent = "";
      ui.extra.textContent = "";
      return;
    }
    const metrics = champion.metrics || {};
    ui.championVersion.textContent = "v" + champion.version;
    ui.championSub.textContent =
      "Promoted " + formatDate(champion.promoted_at) + " · " + (champion.scored ? "scores ready" : "scoring… " + scoredCount + "/" + responseCount);
    ui.championSub.title = (champion.gate && champion.gate.reason) || "";
    ui.accuracy.textContent = typeof metrics.accuracy === "number" ? (metrics.accuracy * 100).toFixed(1) + "%" : "—";
    ui.loss.textContent = formatNumber(metrics.loss);
    const interval = percentInterval(metrics.accuracy_ci);
    ui.pairs.textContent = metrics.pairs !== undefined ? (interval ? "95 % CI " + interval + " % · " : "") + metrics.pairs + " held-out pairs" : "";
    const shown = new Set(["accuracy", "accuracy_ci", "loss", "pairs"]);
    ui.extra.textContent = Object.entries(metrics)
      .filter(([name, value]) => !shown.has(name) && (typeof value === "number" || typeof value === "string"))
      .slice(0, 3)
      .map(([name, value]) => name.replace(/_/g, " ") + " " + (typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : value))
      .join(" · ");
  }

  // A reward model's scores are Bradley–Terry logits: P(a preferred over b) = sigmoid(score_a - score_b).
  // The highest of near-equal scores (0.51 vs 0.50) is a coin toss, not a "best" response, so a
  // response is marked best only when the model prefers it over every other response of its
  // prompt with at least this probability. Against the runner-up the probability is smallest
  // (sigmoid is increasing), so that one comparison decides.
  const BEST_MIN_PROBABILITY = 0.6;

  /** {probability, best} for a prompt's top-scored response (the server says which, over all its
   * responses, whatever the filters); null for every other response. */
  function topOf(row) {
    if (typeof row.top_probability !== "number") return null;
    return { probability: row.top_probability, best: row.top_probability >= BEST_MIN_PROBABILITY };
  }

  function scoreTitle(top) {
    const p = top.probability.toFixed(2);
    return top.best
      ? "Best: the model prefers it over every other response of this prompt, P ≥ " + p + " (Bradley–Terry, against the runner-up)"
      : "Highest score, but the model prefers it over the runner-up only with P = " + p + " (< " + BEST_MIN_PROBABILITY + "): no clear best";
  }

  /** The response as the annotators read it: Markdown rendered and sanitised by the server, in a
   * box of bounded height that scrolls inside itself; the plain preview if no HTML came. */
  function responseBody(row) {
    if (typeof row.html !== "string") return el("div", { className: "clamp", title: row.text_preview }, row.text_preview);
    const body = el("div", { className: "md response-md", dataset: { testid: "response-md-" + row.response_id } });
    body.innerHTML = row.html; // sanitised server-side (annotation.rendering, an nh3 allow-list)
    return [
      body,
      row.html_truncated ? el("div", { className: "small muted" }, "… only the start of a long response is shown") : null,
    ];
  }

  // A version with per-criterion heads: each head's score under the overall one, in the
  // project's criteria order (the scores API's `criteria`).
  function criterionScores(row) {
    const keys = (lastScores && lastScores.criteria) || [];
    const scores = row.criterion_scores || {};
    const lines = keys.filter((key) => typeof scores[key] === "number").map((key) =>
      el("div", { className: "small muted", dataset: { testid: "criterion-score-" + row.response_id + "-" + key } },
        key + " " + formatNumber(scores[key])));
    return lines.length ? el("div", { className: "criterion-scores" }, lines) : null;
  }

  function renderResponses() {
    if (!lastScores) return;
    const ordered = lastScores.results;
    const grouped = view.sort === "prompt";
    const rows = ordered.map((row, index) => {
      const top = topOf(row);
      const isBest = Boolean(top && top.best);
      // In prompt order a prompt's responses are adjacent: show the prompt once, spanning them.
      let promptCell = null;
      if (!grouped || index === 0 || ordered[index - 1].prompt_external_id !== row.prompt_external_id) {
        let span = 1;
        while (grouped && index + span < ordered.length && ordered[index + span].prompt_external_id === row.prompt_external_id) span += 1;
        promptCell = el("td", { className: "cell-prompt", rowSpan: span }, [
          el("span", { className: "mono small muted" }, row.prompt_external_id),
          el("div", { className: "clamp", title: row.prompt_preview }, row.prompt_preview),
        ]);
      }
      return el("tr", { className: promptCell && index > 0 ? "group-start" : "", dataset: { testid: "response-" + row.response_id } }, [
        promptCell,
        el("td", { className: "cell-model" }, el("span", { className: "chip" }, row.model_name || "—")),
        el("td", { className: "cell-text" }, responseBody(row)),
        el(
          "td",
          { className: "num mono" + (isBest ? " is-best" : ""), title: top ? scoreTitle(top) : undefined, dataset: { testid: "score-" + row.response_id } },
          [formatNumber(row.score), criterionScores(row)]
        ),
      ]);
    });
    if (!rows.length) {
      const filtered = view.model || view.min_score !== "" || view.max_score !== "" || view.q;
      const message = filtered ? "No responses match these filters." : view.page > 1 ? "No more responses." : "No responses imported yet.";
      rows.push(el("tr", null, el("td", { colSpan: 4, className: "muted" }, message)));
    }
    ui.responses.replaceChildren(...rows);
  }

  /* -------------------------------------------------------------- runs */

  const STATUS_CLASS = { queued: "muted", running: "info", succeeded: "success", failed: "danger" };
  const VERSION_CLASS = { champion: "success", rejected: "danger", retired: "muted" };

  function runProgress(run) {
    const progress = run.progress || {};
    if (run.status !== "running" || !progress.total_steps) return null;
    const fraction = Math.max(0, Math.min(1, progress.step / progress.total_steps));
    const bits = ["step " + progress.step + "/" + progress.total_steps];
    if (typeof progress.loss === "number") bits.push("loss " + progress.loss.toFixed(3));
    if (typeof progress.eta_s === "number") bits.push("~" + Math.max(0, Math.round(progress.eta_s)) + " s left");
    // Width through the CSSOM: a style attribute would be refused by the CSP (style-src 'self').
    const fill = el("div", { className: "bar__fill" });
    fill.style.width = (fraction * 100).toFixed(1) + "%";
    return el("div", { className: "run__progress" }, [
      el("div", { className: "bar" }, fill),
      el("div", { className: "small muted" }, bits.join(" · ")),
    ]);
  }

  /** Send attempts of a queued run, for a title: how often it was offered to the broker and when it last got through. */
  function dispatchTitle(run) {
    const bits = ["Sent to the broker " + run.dispatch_attempts + (run.dispatch_attempts === 1 ? " time" : " times")];
    if (run.dispatched_at) bits.push("last taken " + formatDate(run.dispatched_at, true));
    if (run.dispatch_error) bits.push("last error: " + run.dispatch_error);
    return bits.join(" · ");
  }

  function waitingNote(run) {
    if (!run.waiting) return null;
    return el(
      "div",
      { className: "run__waiting small" + (run.dispatch_error ? " is-stuck" : ""), title: dispatchTitle(run), dataset: { testid: "run-waiting-" + run.id } },
      run.waiting
    );
  }

  function renderRuns(runs) {
    const key = runs.map((run) => run.id + run.status).join(",");
    const changed = runsKey !== null && key !== runsKey;
    runsKey = key;

    const latest = runs[0];
    ui.latestRun.replaceChildren(
      latest ? el("span", { className: "badge badge--" + (STATUS_CLASS[latest.status] || "muted") }, latest.status) : "—"
    );
    ui.latestRunSub.textContent = latest ? "#" + latest.id + " · " + latest.trigger + " · " + formatDate(latest.created_at) : "No runs yet";
    const waiting = (latest && latest.waiting) || "";
    ui.latestRunWaiting.textContent = waiting;
    ui.latestRunWaiting.title = waiting ? dispatchTitle(latest) : "";
    ui.latestRunWaiting.classList.toggle("is-stuck", Boolean(waiting && latest.dispatch_error));
    ui.latestRunWaiting.hidden = !waiting;
    const active = Boolean(latest && (latest.status === "queued" || latest.status === "running"));
    ui.trainButton.disabled = active;
    ui.trainButton.title = active ? "A run is already " + latest.status + "." : "Train a new reward model on every label so far.";

    if (!runs.length) {
      ui.runs.replaceChildren(el("li", { className: "runs__empty muted" }, "No training runs yet. Use “Train now” to start one."));
      return changed;
    }
    ui.runs.replaceChildren(
      ...runs.slice(0, 20).map((run) =>
        el("li", { className: "run", dataset: { testid: "run-" + run.id, status: run.status } }, [
          el("div", { className: "run__head" }, [
            el("span", { className: "badge badge--" + (STATUS_CLASS[run.status] || "muted") }, run.status),
            el("span", { className: "strong" }, "#" + run.id),
            el("span", { className: "muted small" }, run.trigger),
            el("span", { className: "run__time muted small" }, formatDate(run.finished_at || run.started_at || run.created_at)),
          ]),
          runProgress(run),
          el(
            "div",
            { className: "small muted" },
            run.pairs + " pairs" + (run.model_version ? " · model version #" + run.model_version : "")
          ),
          waitingNote(run),
          run.error ? el("div", { className: "run__error small" }, run.error) : null,
        ])
      )
    );
    return changed;
  }

  /* ---------------------------------------------------------- versions */

  async function loadVersions() {
    versionsAt = Date.now();
    let versions;
    try {
      ({ data: versions } = await api("GET", urls.versions));
    } catch (error) {
      reportError("versions", error);
      return false;
    }
    clearErrors("versions");
    // Rebuilt only when a version, its status, metrics or gate changed: a poll leaves the table
    // (and a Promote button being pointed at) alone.
    const key = JSON.stringify(versions.map((v) => [v.id, v.status, v.metrics, v.champion_metrics, v.gate, v.promoted_at, v.scored_at]));
    if (key === versionsKey) return false;
    versionsKey = key;
    // The export dialog offers these versions for the scores file; it listens instead of fetching again.
    root.dispatchEvent(new CustomEvent("results:versions", { detail: { versions: versions } }));
    if (!versions.length) {
      ui.versions.replaceChildren(el("tr", null, el("td", { colSpan: 6, className: "muted" }, "No model versions yet.")));
      return true;
    }
    const champion = versions.find((version) => version.is_champion);
    ui.versions.replaceChildren(
      ...versions.map((version) => {
        // Promoting an older version is a rollback; a rejected one, an override of the gate.
        const label = champion && version.version < champion.version ? "Roll back" : "Promote";
        const action = version.is_champion
          ? null
          : el("button", { type: "button", className: "btn btn--sm", dataset: { testid: "promote-" + version.id, action: "promote", versionId: String(version.id), versionName: "v" + version.version } }, label);
        const id = version.id;
        return el("tr", { className: version.is_champion ? "is-champion" : "", dataset: { testid: "version-" + id } }, [
          el("td", { className: "nowrap", title: "Created " + formatDate(version.created_at, true) }, [
            el("span", { className: "strong" }, "v" + version.version),
            el("span", { className: "badge badge--" + (VERSION_CLASS[version.status] || "muted") }, version.status),
          ]),
          el("td", { className: "num nowrap", dataset: { testid: "version-accuracy-" + id } }, [
            ...[].concat(accuracyCell(version.metrics, true)),
            criteriaLines(version),
          ]),
          el("td", { className: "num nowrap", dataset: { testid: "version-champion-" + id } }, championCell(version)),
          el("td", { className: "num nowrap", dataset: { testid: "version-difference-" + id } }, differenceCell(version)),
          el("td", { className: "version-gate", dataset: { testid: "version-gate-" + id } }, gateCell(version)),
          el("td", { className: "version-action" }, [
            action,
            // The exact frozen pairs this version was trained on (the server checks their SHA-256).
            el("a", {
              className: "btn btn--sm btn--ghost",
              href: apiRoot + "model-versions/" + id + "/snapshot/",
              download: "",
              title: "Download the frozen training data of v" + version.version + " (JSON Lines)",
              dataset: { testid: "snapshot-" + id },
            }, "Data"),
          ]),
        ]);
      })
    );
    return true;
  }

  /* Every number in a version's row is measured on that version's held-out pairs: its own
   * accuracy, the previous champion's on the same pairs, and the paired difference the gate
   * decided on. Intervals are 95 %; a small held-out set shows as a wide one. */

  const percent = (value) => (value * 100).toFixed(1) + " %";
  const hasAccuracy = (metrics) => Boolean(metrics) && typeof metrics.accuracy === "number";

  /** "71.0 % (64–77) · 180 pairs", or a dash when the version has no accuracy. */
  function accuracyCell(metrics, withPairs) {
    const pairs = metrics && typeof metrics.pairs === "number" ? metrics.pairs + (metrics.pairs === 1 ? " pair" : " pairs") : "";
    if (!hasAccuracy(metrics)) return withPairs && pairs ? "— · " + pairs : "—";
    const interval = percentInterval(metrics.accuracy_ci);
    return [
      percent(metrics.accuracy),
      interval ? el("span", { className: "muted", title: "95 % interval (Wilson)" }, " (" + interval + ")") : null,
      withPairs && pairs ? el("span", { className: "muted" }, " · " + pairs) : null,
    ];
  }

  function championCell(version) {
    if (hasAccuracy(version.champion_metrics)) return accuracyCell(version.champion_metrics, false);
    const first = (version.gate || {}).outcome === "first_model" || version.parent === null;
    return el("span", { className: "muted", title: first ? "There was no champion to compare with." : "Not measured." }, "—");
  }

  /** "+3.1 pts", "−0.4 pts": a difference of accuracies in percentage points, with a real minus sign. */
  function points(value, unit) {
    const size = Math.abs(value * 100).toFixed(1);
    const sign = size === "0.0" ? "" : value > 0 ? "+" : "−";
    return sign + size + (unit ? " pts" : "");
  }

  /** "+3.1 pts (−0.4 to +6.6)": the gate's paired difference; without a gate record, the plain difference. */
  function differenceCell(version) {
    const gate = version.gate || {};
    if (typeof gate.difference === "number") {
      const interval = Array.isArray(gate.difference_ci) ? gate.difference_ci : null;
      return [
        points(gate.difference, true),
        interval
          ? el("span", { className: "muted", title: "95 % interval of the paired difference" }, " (" + points(interval[0]) + " to " + points(interval[1]) + ")")
          : null,
      ];
    }
    if (hasAccuracy(version.metrics) && hasAccuracy(version.champion_metrics)) {
      return el(
        "span",
        { title: "Difference of the two accuracies; no interval was recorded for this version." },
        points(version.metrics.accuracy - version.champion_metrics.accuracy, true)
      );
    }
    return el("span", { className: "muted" }, "—");
  }

  const GATE_OUTCOMES = {
    first_model: { label: "first model", kind: "info" },
    better: { label: "better", kind: "success" },
    not_better: { label: "not better", kind: "muted" },
    insufficient_data: { label: "not enough evaluation data", kind: "warning" },
    criterion_worse: { label: "a criterion head is worse", kind: "danger" },
  };

  // A criterion head's own check against the champion's head (training.promotion.criterion_check).
  const CHECK_LABELS = { first_model: "new head", not_worse: "not worse", worse: "worse", insufficient_data: "too few pairs" };

  /** One line per per-criterion head: its held-out accuracy on its own pairs and its check. */
  function criteriaLines(version) {
    const heads = (version.metrics && version.metrics.criteria) || {};
    const lines = Object.entries(heads).map(([key, metrics]) => {
      const check = metrics.check || {};
      return el("div", { className: "small" + (check.outcome === "worse" ? " text-danger" : " muted"), title: check.reason || "",
        dataset: { testid: "version-criterion-" + version.id + "-" + key } },
        key + " " + (hasAccuracy(metrics) ? percent(metrics.accuracy) : "—") + " · " + (metrics.pairs || 0) + " pairs · " +
        (CHECK_LABELS[check.outcome] || "unchecked"));
    });
    const note = version.metrics && version.metrics.criteria_note;
    if (note) lines.push(el("div", { className: "small muted", title: note }, "no criterion heads"));
    return lines.length ? el("div", { className: "criterion-lines" }, lines) : null;
  }

  function gateCell(version) {
    const gate = version.gate || {};
    const outcome = GATE_OUTCOMES[gate.outcome];
    if (!outcome) return el("span", { className: "muted", title: "No gate decision was recorded for this version." }, "—");
    const overridden = gate.promote === false && Boolean(version.promoted_at);
    const settings = "Gate: at least " + gate.min_pairs + " evaluation pairs, tolerance " + points(gate.tolerance || 0, true);
    return [
      el("span", { className: "badge badge--" + outcome.kind, title: settings, dataset: { outcome: gate.outcome } }, outcome.label),
      overridden ? el("span", { className: "badge badge--muted", title: "An admin promoted it although the gate did not." }, "promoted by hand") : null,
      el("div", { className: "version-gate__reason small muted" }, gate.reason || ""),
    ];
  }

  async function promote(button) {
    const name = button.dataset.versionName;
    if (!window.confirm("Make " + name + " the champion? Scores switch to it once it has scored every response.")) return;
    button.disabled = true;
    try {
      await api("POST", apiRoot + "model-versions/" + button.dataset.versionId + "/promote/");
      toast(name + " is now the champion.", "success");
    } catch (error) {
      toast(error.detail);
    }
    await loadVersions();
    await poll();
  }

  /* ------------------------------------------------------ poll and push */

  /** Runs a refresh now; one asked for during a refresh (an event, an action) runs right after it. */
  async function poll() {
    if (polling) {
      refreshAgain = true;
      return;
    }
    polling = true;
    window.clearTimeout(pollTimer);
    try {
      do {
        refreshAgain = false;
        await refresh();
      } while (refreshAgain);
    } finally {
      polling = false;
      schedule();
    }
  }

  async function refresh() {
    const [scores, runs] = await Promise.allSettled([fetchScores(), api("GET", urls.runs)]);
    let refreshVersions = false;
    if (scores.status === "fulfilled") {
      clearErrors("scores");
      if (scores.value) refreshVersions = renderScores(scores.value) || refreshVersions;
    } else {
      reportError("scores", scores.reason);
      if (scoresKey === null) ui.championVersion.textContent = "—";
    }
    if (runs.status === "fulfilled") {
      clearErrors("runs");
      refreshVersions = renderRuns(runs.value.data) || refreshVersions;
    } else {
      reportError("runs", runs.reason);
      if (runsKey === null) ui.runs.replaceChildren(el("li", { className: "runs__empty muted" }, runs.reason.detail));
    }
    // The versions follow at once when the champion or a run changed, and every VERSIONS_MS
    // anyway, so a version promoted or rescored elsewhere shows up without a reload.
    let versionsChanged = false;
    if (refreshVersions || Date.now() - versionsAt >= VERSIONS_MS) versionsChanged = await loadVersions();
    ui.updated.textContent = "Updated " + new Date().toLocaleTimeString() + (root.dataset.live === "push" ? " · live" : "");
    // Slower cards (the leaderboard, the training policy) follow this poll at their own, lower
    // rate, and at once when the champion or the versions changed.
    root.dispatchEvent(
      new CustomEvent("results:refreshed", { detail: { championChanged: refreshVersions, versionsChanged: versionsChanged } })
    );
  }

  function schedule() {
    window.clearTimeout(pollTimer);
    // A hidden tab does not poll; it catches up as soon as it is visible again. With a stream
    // open the server says when scores and runs changed, and the timer only paces the cards.
    if (!document.hidden) pollTimer = window.setTimeout(root.dataset.live === "push" ? paceCards : poll, POLL_MS);
  }

  /** Pushed, nothing here is fetched; the cards that follow labels (leaderboard, annotators,
   * policy), which the server does not push, keep loading at their own rate from this beat. */
  function paceCards() {
    root.dispatchEvent(new CustomEvent("results:refreshed", { detail: { championChanged: false, versionsChanged: false } }));
    schedule();
  }

  /** Opens the event stream: from its "open" on, events replace the poll. */
  function openStream() {
    window.clearTimeout(streamTimer);
    if (stream || document.hidden || typeof window.EventSource !== "function") return;
    const source = new EventSource(urls.events);
    stream = source;
    const current = (handler) => (event) => {
      if (stream === source) handler(event); // a closed stream's late event changes nothing
    };
    source.addEventListener("open", current(() => {
      root.dataset.live = "push";
      schedule(); // stops the poll
    }));
    // The first event of every stream too: it catches up on what changed while there was none,
    // and on what the server does not push (labels, imports) every EVENT_STREAM_SECONDS.
    source.addEventListener("results", current(() => poll()));
    // The server recycles its threads: not an error, the next stream follows at once.
    source.addEventListener("end", current(() => {
      closeStream();
      openStream();
    }));
    // Refused (503: the server's streams are all in use), cut off, or the server is down: poll
    // until a stream opens again. EventSource would retry by itself after a drop, but not after a
    // refusal; retrying here covers both, at a pace that does not hammer a busy server.
    source.addEventListener("error", current(() => {
      closeStream();
      root.dataset.live = "polling";
      schedule();
      if (!document.hidden) streamTimer = window.setTimeout(openStream, STREAM_RETRY_MS);
    }));
  }

  function closeStream() {
    if (!stream) return;
    stream.close();
    stream = null;
  }

  async function trainNow() {
    ui.trainButton.disabled = true;
    try {
      const { data } = await api("POST", urls.runs);
      toast(
        data.created ? "Training run #" + data.run.id + " queued." : "Run #" + data.run.id + " is already " + data.run.status + ".",
        data.created ? "success" : "info"
      );
    } catch (error) {
      toast(error.detail);
    }
    await poll();
  }

  ui.trainButton.addEventListener("click", trainNow);
  ui.versions.addEventListener("click", (event) => {
    const button = event.target.closest('[data-action="promote"]');
    if (button) promote(button);
  });
  ui.sortButton.addEventListener("click", () => {
    // Highest first, then lowest first, then back to prompt order.
    changeView({ sort: view.sort === "prompt" ? "-score" : view.sort === "-score" ? "score" : "prompt" });
  });
  ui.previousButton.addEventListener("click", () => goToPage(lastScores && lastScores.previous, -1));
  ui.nextButton.addEventListener("click", () => goToPage(lastScores && lastScores.next, +1));
  ui.filters.addEventListener("submit", (event) => event.preventDefault());
  ui.filters.addEventListener("change", (event) => {
    const name = event.target.name;
    if (name === "model" || name === "min_score" || name === "max_score") changeView({ [name]: event.target.value.trim() });
  });
  let searchTimer = null;
  ui.filters.addEventListener("input", (event) => {
    if (event.target.name !== "q") return;
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => {
      const q = event.target.value.trim();
      if (q !== view.q) changeView({ q: q });
    }, SEARCH_DEBOUNCE_MS);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      // A background tab holds no server thread: its stream closes, and it neither polls nor listens.
      closeStream();
      window.clearTimeout(streamTimer);
      root.dataset.live = "polling";
      schedule();
      return;
    }
    poll();
    openStream();
  });

  root.dataset.live = "polling";
  poll(); // the first scores answer also loads the model versions
  openStream();
})();
