/* Project dashboard: five charts from GET /api/projects/{id}/dashboard/, drawn with the vendored
 * Chart.js and redrawn in place every REFRESH_MS while the tab is visible.
 *
 * labels per day (stacked by annotator, 30 days), labels per hour (48 h), agreement per week,
 * held-out accuracy per model version with its 95 % interval, and the loss curve of a chosen run.
 * Each chart is updated rather than rebuilt, so a refresh does not flicker or lose a hovered tooltip.
 */
(function () {
  "use strict";

  const { api, el, formatDate } = window.Studio;
  const root = document.getElementById("dashboard");
  if (!root) return;

  const REFRESH_MS = 30000;
  // Distinct, print-safe colours for the annotators' stacks; the palette repeats past ten.
  const PALETTE = ["#1f4fd1", "#0f7a6c", "#c4320a", "#7a5af8", "#b54708", "#0086c9", "#c11574", "#3b7c0f", "#667085", "#9e165f"];
  const ACCENT = { line: "#1f4fd1", fill: "rgba(31, 79, 209, 0.18)" };
  const TEAL = { line: "#0f7a6c", fill: "rgba(15, 122, 108, 0.18)" };

  const charts = {};
  const canvas = (name) => root.querySelector('[data-chart="' + name + '"]');
  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const ui = {
    updated: region("updated"),
    daySummary: region("labels-per-day-summary"),
    hourSummary: region("labels-per-hour-summary"),
    lossRun: region("loss-run"),
  };
  let timer = null;
  let loading = false;
  let last = null;

  /** The empty-state note over a chart's box: shown when the chart has nothing to draw. */
  function setEmpty(name, message) {
    const box = canvas(name).parentElement;
    let note = box.querySelector(".dashboard-card__empty");
    if (!note) {
      note = el("p", { className: "dashboard-card__empty muted small", dataset: { testid: "empty-" + name } });
      box.appendChild(note);
    }
    note.textContent = message || "";
    note.hidden = !message;
  }

  /** Creates the chart the first time, then swaps its data and redraws. */
  function draw(name, config) {
    if (typeof window.Chart !== "function") return;
    const chart = charts[name];
    if (chart) {
      chart.data = config.data;
      chart.update();
      return;
    }
    config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options);
    charts[name] = new window.Chart(canvas(name), config);
  }

  const dayLabel = (iso) => new Date(iso + "T00:00:00").toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const percent = (value) => Math.round(value * 100) + " %";

  function drawLabelsPerDay(series) {
    const total = series.annotators.reduce((sum, row) => sum + row.total, 0);
    ui.daySummary.textContent = total + " labels by " + series.annotators.length + (series.annotators.length === 1 ? " annotator" : " annotators") + " in 30 days";
    setEmpty("labels-per-day", total ? "" : "No labels in the last 30 days");
    draw("labels-per-day", {
      type: "bar",
      data: {
        labels: series.days.map(dayLabel),
        datasets: series.annotators.map((row, index) => ({
          label: row.username, data: row.counts, backgroundColor: PALETTE[index % PALETTE.length], stack: "labels",
        })),
      },
      options: {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Labels" } } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      },
    });
  }

  /** "Mon 14:00" in the reader's zone; the server counts hours in UTC. */
  const hourLabel = (iso) => new Date(iso).toLocaleString(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });

  function drawLabelsPerHour(series) {
    const total = series.counts.reduce((sum, count) => sum + count, 0);
    const lastHour = series.counts[series.counts.length - 1] || 0;
    ui.hourSummary.textContent = total + " in 48 h · " + lastHour + " this hour";
    setEmpty("labels-per-hour", total ? "" : "No labels in the last 48 hours");
    draw("labels-per-hour", {
      type: "bar",
      data: {
        labels: series.hours.map(hourLabel),
        datasets: [{ label: "Labels", data: series.counts, backgroundColor: ACCENT.line }],
      },
      options: {
        scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  function drawAgreement(points) {
    const measured = points.filter((point) => point.agreement !== null);
    setEmpty("agreement", measured.length ? "" : "No item labelled twice in one week yet");
    draw("agreement", {
      type: "line",
      data: {
        labels: points.map((point) => "week of " + dayLabel(point.week)),
        datasets: [{
          label: "Agreement", data: points.map((point) => point.agreement), borderColor: TEAL.line, backgroundColor: TEAL.line,
          pointRadius: 4, spanGaps: false,
          // The tooltip says what a point rests on; kept beside the data so it follows a refresh.
          comparisons: points.map((point) => point.comparisons), capped: points.map((point) => point.capped),
        }],
      },
      options: {
        scales: { y: { min: 0, max: 1, ticks: { callback: (value) => percent(value) } } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (context) => {
                const dataset = context.dataset;
                return percent(context.raw) + " of " + dataset.comparisons[context.dataIndex] + " comparisons" +
                  (dataset.capped[context.dataIndex] ? " (a sample of the week)" : "");
              },
            },
          },
        },
      },
    });
  }

  /** A floating bar [low, high] for the interval and a point for the accuracy: Chart.js has no error bars. */
  function drawAccuracy(versions) {
    const measured = versions.filter((row) => row.accuracy !== null);
    setEmpty("accuracy", measured.length ? "" : "No model version with a held-out accuracy yet");
    draw("accuracy", {
      type: "bar",
      data: {
        labels: versions.map((row) => "v" + row.version),
        datasets: [
          {
            type: "bar", label: "95 % interval", data: versions.map((row) => row.interval), grouped: false,
            backgroundColor: ACCENT.fill, borderColor: ACCENT.line, borderWidth: 1, borderSkipped: false, barPercentage: 0.4,
          },
          {
            type: "line", label: "Accuracy", data: versions.map((row) => row.accuracy), showLine: false,
            pointRadius: 5, pointBackgroundColor: versions.map((row) => (row.status === "champion" ? TEAL.line : ACCENT.line)),
            borderColor: ACCENT.line, pairs: versions.map((row) => row.pairs), statuses: versions.map((row) => row.status),
          },
        ],
      },
      options: {
        scales: { y: { min: 0, max: 1, ticks: { callback: (value) => percent(value) }, title: { display: true, text: "Held-out accuracy" } } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (context) => {
                const raw = context.raw;
                if (Array.isArray(raw)) return "95 % interval " + percent(raw[0]) + " to " + percent(raw[1]);
                const dataset = context.dataset;
                const pairs = dataset.pairs[context.dataIndex];
                return "Accuracy " + (raw * 100).toFixed(1) + " %" + (pairs ? " on " + pairs + " pairs" : "") + " · " + dataset.statuses[context.dataIndex];
              },
            },
          },
        },
      },
    });
  }

  /** Keeps the run list current without losing the admin's choice (the newest run until they pick one). */
  function fillRunChoice(curves) {
    const chosen = ui.lossRun.dataset.chosen || "";
    ui.lossRun.replaceChildren(
      ...curves.map((curve) =>
        el("option", { value: String(curve.run) }, "#" + curve.run + " · " + curve.status + (curve.model_version ? " · v" + curve.model_version : "") + " · " + formatDate(curve.created_at, true))
      )
    );
    ui.lossRun.disabled = !curves.length;
    if (chosen && curves.some((curve) => String(curve.run) === chosen)) ui.lossRun.value = chosen;
  }

  function drawLoss(curves) {
    fillRunChoice(curves);
    const curve = curves.find((item) => String(item.run) === ui.lossRun.value) || curves[0];
    setEmpty("loss", curve ? "" : "No training run has reported a loss yet");
    draw("loss", {
      type: "line",
      data: {
        datasets: [{
          label: curve ? "Run #" + curve.run : "Loss",
          data: curve ? curve.points.map((point) => ({ x: point[0], y: point[1] })) : [],
          borderColor: ACCENT.line, backgroundColor: ACCENT.fill, pointRadius: 0, borderWidth: 1.5, tension: 0,
        }],
      },
      options: {
        parsing: true,
        scales: {
          x: { type: "linear", title: { display: true, text: "Step" }, ticks: { precision: 0 } },
          y: { title: { display: true, text: "Training loss" } },
        },
        plugins: { legend: { display: false } },
      },
    });
  }

  function render(data) {
    last = data;
    drawLabelsPerDay(data.labels_per_day);
    drawLabelsPerHour(data.labels_per_hour);
    drawAgreement(data.agreement_per_week);
    drawAccuracy(data.accuracy_per_version);
    drawLoss(data.loss_curves);
    ui.updated.textContent = "Updated " + new Date().toLocaleTimeString() + " · days and weeks in " + data.time_zone;
    root.dataset.loaded = "true";
  }

  async function load() {
    if (loading) return;
    loading = true;
    window.clearTimeout(timer);
    try {
      const { data } = await api("GET", root.dataset.url);
      render(data);
    } catch (error) {
      // Keep the charts shown; say why they are not current.
      ui.updated.textContent = error.detail;
    } finally {
      loading = false;
      schedule();
    }
  }

  function schedule() {
    window.clearTimeout(timer);
    // A hidden tab does not poll; it catches up as soon as it is visible again.
    if (!document.hidden) timer = window.setTimeout(load, REFRESH_MS);
  }

  ui.lossRun.addEventListener("change", () => {
    ui.lossRun.dataset.chosen = ui.lossRun.value;
    if (last) drawLoss(last.loss_curves);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) load();
    else window.clearTimeout(timer);
  });

  load();
})();
