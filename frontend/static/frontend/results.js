/* Admin results page: every response with the champion reward model's score, the champion's
 * metrics, training runs and model versions.
 *
 * Polls scores and training runs every few seconds. The responses table is rebuilt only when
 * the champion changes or finishes scoring (or responses are added), so a sorted or scrolled
 * table does not jump on every poll; runs are cheap and re-render each time.
 */
(function () {
  "use strict";

  const { api, toast, el, formatNumber, formatDate } = window.Studio;
  const root = document.getElementById("results");
  if (!root) return;

  const POLL_MS = 3000;
  const apiRoot = root.dataset.apiRoot;
  const projectId = root.dataset.projectId;
  const urls = {
    scores: apiRoot + "projects/" + projectId + "/scores/",
    runs: apiRoot + "projects/" + projectId + "/training-runs/",
    versions: apiRoot + "projects/" + projectId + "/model-versions/",
  };

  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const ui = {
    championVersion: root.querySelector('[data-testid="champion-version"]'),
    championSub: region("champion-sub"),
    accuracy: region("metric-accuracy"),
    pairs: region("metric-pairs"),
    loss: region("metric-loss"),
    extra: region("metric-extra"),
    latestRun: region("latest-run"),
    latestRunSub: region("latest-run-sub"),
    responses: region("responses"),
    responsesSummary: region("responses-summary"),
    runs: region("runs"),
    versions: region("versions"),
    updated: region("updated"),
    trainButton: root.querySelector('[data-action="train"]'),
    sortButton: root.querySelector('[data-action="sort-score"]'),
  };

  let scoresKey = null; // what the responses table was last built from
  let lastScores = null;
  let runsKey = null; // statuses of the runs last seen; a change may mean a new model version
  let sortOrder = null; // null (server order) | "desc" | "asc"
  let pollTimer = null;
  let polling = false;
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

  function renderScores(data) {
    const champion = data.champion;
    const key = champion ? champion.id + ":" + champion.scored + ":" + data.responses.length : "none:" + data.responses.length;
    lastScores = data;
    if (key === scoresKey) return false;
    scoresKey = key;
    renderChampion(champion);
    renderResponses();
    return true;
  }

  function renderChampion(champion) {
    if (!champion) {
      ui.championVersion.textContent = "none";
      ui.championSub.textContent = "No model trained yet";
      ui.accuracy.textContent = "—";
      ui.loss.textContent = "—";
      ui.pairs.textContent = "";
      ui.extra.textContent = "";
      return;
    }
    const metrics = champion.metrics || {};
    ui.championVersion.textContent = "v" + champion.version;
    ui.championSub.textContent =
      "Promoted " + formatDate(champion.promoted_at) + " · " + (champion.scored ? "scores ready" : "scoring…");
    ui.accuracy.textContent = typeof metrics.accuracy === "number" ? (metrics.accuracy * 100).toFixed(1) + "%" : "—";
    ui.loss.textContent = formatNumber(metrics.loss);
    ui.pairs.textContent = metrics.pairs !== undefined ? metrics.pairs + " held-out pairs" : "";
    const shown = new Set(["accuracy", "loss", "pairs"]);
    ui.extra.textContent = Object.entries(metrics)
      .filter(([name, value]) => !shown.has(name) && (typeof value === "number" || typeof value === "string"))
      .slice(0, 3)
      .map(([name, value]) => name.replace(/_/g, " ") + " " + (typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : value))
      .join(" · ");
  }

  function sortedResponses() {
    const rows = lastScores.responses.slice();
    if (!sortOrder) return rows;
    const sign = sortOrder === "desc" ? -1 : 1;
    // Unscored rows sink to the bottom in both directions.
    return rows.sort((a, b) => {
      if (a.score === null && b.score === null) return 0;
      if (a.score === null) return 1;
      if (b.score === null) return -1;
      return sign * (a.score - b.score);
    });
  }

  function renderResponses() {
    if (!lastScores) return;
    const responses = lastScores.responses;
    const bestByPrompt = new Map();
    for (const row of responses) {
      if (row.score === null) continue;
      const best = bestByPrompt.get(row.prompt_external_id);
      if (best === undefined || row.score > best) bestByPrompt.set(row.prompt_external_id, row.score);
    }
    const ordered = sortedResponses();
    const rows = ordered.map((row, index) => {
      const isBest = row.score !== null && bestByPrompt.get(row.prompt_external_id) === row.score;
      // In server order a prompt's responses are adjacent: show the prompt once, spanning them.
      let promptCell = null;
      if (sortOrder || index === 0 || ordered[index - 1].prompt_external_id !== row.prompt_external_id) {
        let span = 1;
        while (!sortOrder && index + span < ordered.length && ordered[index + span].prompt_external_id === row.prompt_external_id) span += 1;
        promptCell = el("td", { className: "cell-prompt", rowSpan: span }, [
          el("span", { className: "mono small muted" }, row.prompt_external_id),
          el("div", { className: "clamp", title: row.prompt_preview }, row.prompt_preview),
        ]);
      }
      return el("tr", { className: promptCell && index > 0 ? "group-start" : "" }, [
        promptCell,
        el("td", { className: "cell-model" }, el("span", { className: "chip" }, row.model_name || "—")),
        el("td", { className: "cell-text" }, el("div", { className: "clamp", title: row.text_preview }, row.text_preview)),
        el(
          "td",
          { className: "num mono" + (isBest ? " is-best" : ""), dataset: { testid: "score-" + row.response_id } },
          formatNumber(row.score)
        ),
      ]);
    });
    if (!rows.length) rows.push(el("tr", null, el("td", { colSpan: 4, className: "muted" }, "No responses imported yet.")));
    ui.responses.replaceChildren(...rows);
    const scored = responses.filter((row) => row.score !== null).length;
    ui.responsesSummary.textContent = responses.length + " responses · " + scored + " scored";
    ui.sortButton.dataset.order = sortOrder || "";
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
    return el("div", { className: "run__progress" }, [
      el("div", { className: "bar" }, el("div", { className: "bar__fill", attrs: { style: "width:" + (fraction * 100).toFixed(1) + "%" } })),
      el("div", { className: "small muted" }, bits.join(" · ")),
    ]);
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
          run.error ? el("div", { className: "run__error small" }, run.error) : null,
        ])
      )
    );
    return changed;
  }

  /* ---------------------------------------------------------- versions */

  async function loadVersions() {
    let versions;
    try {
      ({ data: versions } = await api("GET", urls.versions));
    } catch (error) {
      reportError("versions", error);
      return;
    }
    clearErrors("versions");
    if (!versions.length) {
      ui.versions.replaceChildren(el("tr", null, el("td", { colSpan: 4, className: "muted" }, "No model versions yet.")));
      return;
    }
    const percent = (metrics) => (metrics && typeof metrics.accuracy === "number" ? (metrics.accuracy * 100).toFixed(1) + "%" : "—");
    const champion = versions.find((version) => version.is_champion);
    ui.versions.replaceChildren(
      ...versions.map((version) => {
        // Promoting an older version is a rollback; a rejected one, an override of the gate.
        const label = champion && version.version < champion.version ? "Roll back" : "Promote";
        const action = version.is_champion
          ? null
          : el("button", { type: "button", className: "btn btn--sm", dataset: { testid: "promote-" + version.id, action: "promote", versionId: String(version.id), versionName: "v" + version.version } }, label);
        return el("tr", { className: version.is_champion ? "is-champion" : "" }, [
          el("td", { className: "nowrap", title: "Created " + formatDate(version.created_at, true) }, [
            el("span", { className: "strong" }, "v" + version.version),
            el("span", { className: "badge badge--" + (VERSION_CLASS[version.status] || "muted") }, version.status),
          ]),
          el("td", { className: "num mono" }, percent(version.metrics)),
          el("td", { className: "num mono muted" }, Object.keys(version.champion_metrics || {}).length ? percent(version.champion_metrics) : "—"),
          el("td", { className: "version-action" }, action),
        ]);
      })
    );
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

  /* --------------------------------------------------------------- poll */

  async function poll() {
    if (polling) return;
    polling = true;
    window.clearTimeout(pollTimer);
    try {
      await refresh();
    } finally {
      polling = false;
      schedule();
    }
  }

  async function refresh() {
    const [scores, runs] = await Promise.allSettled([api("GET", urls.scores), api("GET", urls.runs)]);
    let refreshVersions = false;
    if (scores.status === "fulfilled") {
      clearErrors("scores");
      refreshVersions = renderScores(scores.value.data) || refreshVersions;
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
    if (refreshVersions) loadVersions();
    ui.updated.textContent = "Updated " + new Date().toLocaleTimeString();
  }

  function schedule() {
    window.clearTimeout(pollTimer);
    // A hidden tab does not poll; it catches up as soon as it is visible again.
    if (!document.hidden) pollTimer = window.setTimeout(poll, POLL_MS);
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
    sortOrder = sortOrder === null ? "desc" : sortOrder === "desc" ? "asc" : null;
    renderResponses();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });

  poll(); // the first scores answer also loads the model versions
})();
