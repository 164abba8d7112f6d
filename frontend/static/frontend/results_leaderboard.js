/* Results page: the generating models ranked by people (Bradley–Terry over the labels) beside
 * the champion reward model's mean score of their responses (GET leaderboard).
 *
 * Both charts list the models in people's order, so a reward column that does not fall from
 * top to bottom shows at a glance where the reward model disagrees with the annotators.
 * Chart.js is vendored (vendor/chartjs); without it the table still renders.
 *
 * The server bootstraps the rating intervals on every request, so this card follows the page's
 * poll ("results:refreshed") at most once every REFRESH_MS rather than every few seconds, and
 * at once when the champion changed. The page's poll stops in a hidden tab, and so does this.
 */
(function () {
  "use strict";

  const { api, el, formatNumber } = window.Studio;
  const root = document.getElementById("results");
  const card = root && root.querySelector('[data-testid="leaderboard"]');
  if (!card) return;

  const REFRESH_MS = 30000;
  const MIN_GAP_MS = 2500;
  const url = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/leaderboard/";
  const region = (name) => card.querySelector('[data-region="' + name + '"]');
  const ui = {
    summary: region("leaderboard-summary"),
    empty: region("leaderboard-empty"),
    body: region("leaderboard-body"),
    rows: region("leaderboard-rows"),
    agreement: region("leaderboard-agreement"),
    ratingBox: region("rating-chart-box"),
    rewardBox: region("reward-chart-box"),
    winRateDetails: region("win-rate-details"),
    winRate: card.querySelector('[data-testid="win-rate"]'),
  };
  const canvases = {
    rating: card.querySelector('[data-testid="leaderboard-rating-chart"]'),
    reward: card.querySelector('[data-testid="leaderboard-reward-chart"]'),
  };
  const COLORS = {
    rating: { line: "#1f4fd1", fill: "rgba(31, 79, 209, 0.18)" }, // --accent
    reward: { line: "#0f7a6c", fill: "rgba(15, 122, 108, 0.18)" }, // --b
  };

  let loadedAt = 0; // when the last load started (ms); 0 = never
  let loading = false;
  const charts = {};

  /** A whole rating with a real minus sign: ratings below zero happen when one model wins everything. */
  const whole = (value) => String(Math.round(value)).replace("-", "−");

  /** "1043 (1012–1075)"; "−117 (−161 to 23)" where a dash would read as a minus. */
  function ratingText(row) {
    if (row.rating === null) return "—";
    if (!row.rating_ci) return whole(row.rating);
    const [low, high] = row.rating_ci;
    return whole(row.rating) + " (" + whole(low) + (low < 0 ? " to " : "–") + whole(high) + ")";
  }

  /** "0.412 ± 0.087": the mean and the half-width of its (symmetric) interval. */
  function rewardText(row) {
    if (row.mean_reward === null) return "—";
    if (!row.mean_reward_ci) return formatNumber(row.mean_reward);
    return formatNumber(row.mean_reward) + " ± " + formatNumber((row.mean_reward_ci[1] - row.mean_reward_ci[0]) / 2);
  }

  function renderRows(models) {
    let rank = 0;
    ui.rows.replaceChildren(
      ...models.map((row) => {
        if (row.rating !== null) rank += 1;
        return el("tr", { dataset: { model: row.model } }, [
          el("td", { className: "num" }, row.rating !== null ? String(rank) : "—"),
          el("td", null, el("span", { className: "chip" }, row.model)),
          el("td", { className: "num mono", title: row.rating === null ? "No comparison with another named model yet" : undefined }, ratingText(row)),
          el(
            "td",
            { className: "num", title: row.wins + " won · " + row.losses + " lost · " + row.ties + " tied" },
            String(row.comparisons)
          ),
          el(
            "td",
            {
              className: "num mono",
              title: row.scored_responses + " scored responses" + (row.mean_reward !== null && !row.mean_reward_ci ? "; too few for an interval" : ""),
            },
            rewardText(row)
          ),
        ]);
      })
    );
  }

  /** How many pairs of rated, scored models the reward model orders as people do, e.g. "5 of 6". */
  function renderAgreement(models) {
    const both = models.filter((row) => row.rating !== null && row.mean_reward !== null);
    let agree = 0;
    let pairs = 0;
    for (let i = 0; i < both.length; i += 1) {
      for (let j = i + 1; j < both.length; j += 1) {
        if (both[i].rating === both[j].rating) continue;
        pairs += 1;
        // Models are in people's order (best first), so agreement means a higher mean reward for i.
        if (both[i].mean_reward > both[j].mean_reward) agree += 1;
      }
    }
    ui.agreement.hidden = pairs === 0;
    ui.agreement.textContent = pairs
      ? "The reward model orders " + agree + " of " + pairs + " model pairs as people do" +
        (agree === pairs ? "." : ": see where its column below does not fall from top to bottom.")
      : "";
  }

  /** A floating bar [low, high] for the interval and a point for the estimate: Chart.js has no error bars. */
  function chartConfig(labels, estimates, intervals, colors, axisTitle, unit) {
    return {
      type: "bar",
      data: {
        labels: labels,
        datasets: [
          {
            type: "bar", label: "95 % interval", data: intervals, indexAxis: "y", grouped: false,
            backgroundColor: colors.fill, borderColor: colors.line, borderWidth: 1, borderSkipped: false,
            barPercentage: 0.45, categoryPercentage: 1,
          },
          {
            type: "line", label: unit, data: estimates, indexAxis: "y", showLine: false,
            pointRadius: 4.5, pointHoverRadius: 6, pointBackgroundColor: colors.line, borderColor: colors.line,
          },
        ],
      },
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { beginAtZero: false, grace: "4%", title: { display: true, text: axisTitle } },
          y: { ticks: { autoSkip: false } },
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (context) => {
                const raw = context.raw;
                if (Array.isArray(raw)) return "95 % interval " + raw[0].toFixed(unit === "Rating" ? 0 : 3) + " to " + raw[1].toFixed(unit === "Rating" ? 0 : 3);
                return unit + " " + (unit === "Rating" ? Math.round(raw) : Number(raw).toFixed(3));
              },
            },
          },
        },
      },
    };
  }

  function drawChart(name, box, labels, estimates, intervals, axisTitle, unit) {
    if (typeof window.Chart !== "function") return;
    // Height follows the number of models; set through the CSSOM, which the CSP allows.
    box.style.height = 56 + 30 * labels.length + "px";
    const config = chartConfig(labels, estimates, intervals, COLORS[name], axisTitle, unit);
    const chart = charts[name];
    if (chart) {
      // Update in place: a chart rebuilt every refresh would flicker and re-measure.
      chart.data = config.data;
      chart.update();
      return;
    }
    charts[name] = new window.Chart(canvases[name], config);
  }

  function renderCharts(models) {
    const labels = models.map((row) => row.model);
    drawChart(
      "rating", ui.ratingBox, labels,
      models.map((row) => row.rating),
      models.map((row) => row.rating_ci),
      "Bradley–Terry rating (Elo scale)", "Rating"
    );
    drawChart(
      "reward", ui.rewardBox, labels,
      models.map((row) => row.mean_reward),
      models.map((row) => row.mean_reward_ci),
      "Mean reward (champion)", "Mean reward"
    );
  }

  /** Rounded share 0–1 -> one of 11 heat classes (CSS): no inline styles under the CSP. */
  const heatClass = (rate) => "heat heat--" + Math.round(rate * 10);

  function renderWinRate(models, winRate) {
    const rated = models.filter((row) => row.rating !== null).map((row) => row.model);
    ui.winRateDetails.hidden = rated.length < 2;
    const head = el("tr", null, [el("th", { scope: "col" }, "beats →")].concat(rated.map((model) => el("th", { scope: "col", className: "num" }, model))));
    const rows = rated.map((a) =>
      el("tr", { dataset: { model: a } }, [el("th", { scope: "row" }, a)].concat(
        rated.map((b) => {
          if (a === b) return el("td", { className: "num win-rate__self" }, "");
          const rate = (winRate[a] || {})[b];
          if (rate === undefined) return el("td", { className: "num muted", title: "Never compared" }, "—");
          return el("td", { className: "num " + heatClass(rate), title: a + " beat " + b + " in " + Math.round(rate * 100) + " % of their comparisons" }, Math.round(rate * 100) + " %");
        })
      ))
    );
    ui.winRate.replaceChildren(el("thead", null, head), el("tbody", null, rows));
  }

  function render(board) {
    const models = board.models;
    const compared = board.comparisons > 0;
    ui.empty.hidden = compared;
    ui.empty.textContent = compared ? "" : "No model-vs-model comparisons yet";
    ui.body.hidden = !models.length;
    ui.summary.textContent = compared
      ? board.comparisons + " comparisons · intervals from " + board.bootstrap_rounds + " bootstrap rounds" +
        (board.scores_version !== null ? " · rewards from v" + board.scores_version : " · no champion yet")
      : "";
    if (!models.length) return;
    renderRows(models);
    renderAgreement(models);
    renderCharts(models);
    renderWinRate(models, board.win_rate);
  }

  async function load() {
    if (loading) return;
    loading = true;
    loadedAt = Date.now();
    try {
      const { data } = await api("GET", url);
      render(data);
      card.dataset.loaded = "true";
    } catch (error) {
      // Keep what is shown; say why it is not current.
      ui.summary.textContent = error.detail;
      if (card.dataset.loaded !== "true") ui.empty.textContent = error.detail;
    } finally {
      loading = false;
    }
  }

  root.addEventListener("results:refreshed", (event) => {
    const age = Date.now() - loadedAt;
    // A new champion changes the reward column: reload at once (not twice within a poll, though).
    const championChanged = Boolean(event.detail && event.detail.championChanged) && age >= MIN_GAP_MS;
    if (championChanged || age >= REFRESH_MS) load();
  });
  load();
})();
