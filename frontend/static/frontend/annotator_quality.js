/* Results page: how often each annotator agrees with the others and their estimated accuracy
 * (GET annotator-quality), the figures weighted aggregation votes with and an admin reads before
 * leaving someone's labels out. Loaded once per page view: labels change slowly.
 */
(function () {
  "use strict";

  const { api, toast, el, formatNumber } = window.Studio;
  const root = document.getElementById("results");
  const body = root && root.querySelector('[data-region="quality"]');
  if (!body) return;

  const url = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/annotator-quality/";
  const summary = root.querySelector('[data-region="quality-summary"]');

  function percent(value) {
    return value === null ? "—" : Math.round(value * 100) + " %";
  }

  function render(quality) {
    summary.textContent = quality.comparisons
      ? "agree on " + percent(quality.agreement_rate) + " of " + quality.comparisons + " comparisons"
      : "no item labelled twice yet";
    if (!quality.annotators.length) {
      body.replaceChildren(el("tr", null, el("td", { colSpan: 4, className: "muted" }, "No labels yet")));
      return;
    }
    body.replaceChildren(...quality.annotators.map((row) =>
      el("tr", { dataset: { annotator: row.username } }, [
        el("td", null, row.username),
        el("td", { className: "num" }, row.labels),
        el("td", { className: "num", title: row.comparisons + " comparisons" }, percent(row.agreement_rate)),
        el("td", { className: "num" }, formatNumber(row.accuracy, 2)),
      ])
    ));
  }

  api("GET", url).then(({ data }) => render(data), (error) => toast(error.detail));
})();
