/* Results page, Annotators card: per annotator, labels, agreement with the others, estimated
 * accuracy, gold accuracy, position bias, speed outliers and agreement with the champion
 * (GET annotator-report), with a one-click toggle that leaves their labels out of training or
 * lets them back in (POST annotators/<id>/exclusion/, recorded with who, when and the optional
 * reason) and the history of those changes (GET exclusion-changes).
 *
 * Live: it follows the page's poll ("results:refreshed", results.js) at most once every
 * REFRESH_MS, so labels submitted meanwhile show up without a reload, and stops with it in a
 * hidden tab. The table is rebuilt only when the report changed.
 */
(function () {
  "use strict";

  const { api, toast, el, formatNumber, formatDate } = window.Studio;
  const root = document.getElementById("results");
  const body = root && root.querySelector('[data-region="quality"]');
  if (!body) return;

  // The report reads a few bounded windows of labels (about a second at 500,000 labels): not every 3-second poll.
  const REFRESH_MS = 10000;
  // A binomial p-value under this flags a side preference that chance hardly explains.
  const POSITION_FLAG_P = 0.01;
  const base = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/";
  const summary = root.querySelector('[data-region="quality-summary"]');
  const history = root.querySelector('[data-region="exclusion-changes"]');
  const reasonInput = root.querySelector('[data-region="exclusion-reason"]');
  const policyForm = root.querySelector('[data-region="policy-form"]');
  let shownKey = null;
  let loadedAt = 0;
  let loading = false;
  let again = false; // asked to load while a load was in flight (a toggle): load once more after it

  function percent(value) {
    return value === null || value === undefined ? "—" : Math.round(value * 100) + " %";
  }

  /** One figure of the detail line: "gold 80 %", with what it counts in its title. */
  function figure(name, value, title, extra) {
    return el("span", { className: "nowrap", title: title, dataset: { figure: name } }, [name + " ", el("strong", null, value), extra || null]);
  }

  /** The second line of an annotator: the figures that do not fit the narrow card as columns, and the toggle. */
  function details(row, hasChampion) {
    if (row.gold === null) {
      // The first answer has only the tallies' figures; the rest follow in a moment.
      return el("tr", { className: "quality-details", dataset: { details: row.username } },
        [el("td", { colSpan: 3, className: "small muted" }, "gold, position bias, speed and model agreement: loading…"),
          el("td", { className: "actions" }, toggle(row))]);
    }
    const gold = row.gold;
    const position = row.position_bias;
    const speed = row.speed;
    const model = row.model_agreement;
    const flagged = Boolean(position && position.decisive && position.p_value !== null && position.p_value < POSITION_FLAG_P);
    const p = position && position.p_value !== null ? (position.p_value < 0.001 ? "p < 0.001" : "p = " + position.p_value.toFixed(3)) : "";
    const parts = [
      figure("gold", percent(gold.accuracy), gold.labels ? gold.correct + " of " + gold.labels + " gold labels matched the answer" : "No gold labels yet",
        gold.labels > gold.correct ? wrongGoldLink(row, gold.labels - gold.correct) : null),
      figure(
        "left",
        position && position.decisive ? percent(position.left_share) : "—",
        position && position.decisive ? position.left + " of " + position.decisive + " decisive labels chose the left response (" + p + ")" : "No decisive pairwise labels",
        flagged ? el("span", { className: "badge badge--danger" }, "bias") : null
      ),
      figure("too fast", speed.timed ? speed.too_fast + "/" + speed.timed : "—", speed.timed ? "Timed labels faster than reading what was shown" : "No timed labels"),
      figure(
        "model",
        hasChampion ? percent(model.rate) : "—",
        hasChampion ? model.agreed + " of " + model.compared + " preferences agree with the champion" : "No champion model yet"
      ),
    ];
    const line = [];
    parts.forEach((part, index) => line.push(index ? " · " : null, part));
    return el("tr", { className: "quality-details" + (row.excluded ? " muted" : ""), dataset: { details: row.username, flagged: String(flagged) } },
      [el("td", { colSpan: 3, className: "small muted" }, line), el("td", { className: "actions" }, toggle(row))]);
  }

  /** " (3 wrong)", opening the label browser on this annotator's gold labels that missed the answer. */
  function wrongGoldLink(row, wrong) {
    const query = new URLSearchParams({ annotators: String(row.annotator_id), gold: "wrong" });
    return el("span", null, [" (", el("a", {
      href: root.dataset.labelsUrl + "?" + query.toString(), dataset: { testid: "wrong-gold-link" },
      title: "Open " + row.username + "'s gold labels that missed the answer in the label browser",
    }, wrong + " wrong"), ")"]);
  }

  function toggle(row) {
    return el("button", {
      type: "button",
      className: "btn btn--sm" + (row.excluded ? " btn--primary" : ""),
      title: row.excluded ? "Their labels are left out of training: let them back in" : "Leave their labels out of training",
      dataset: { action: "toggle-exclusion", annotatorId: String(row.annotator_id), exclude: String(!row.excluded), testid: "exclusion-" + row.username },
    }, row.excluded ? "Include" : "Exclude");
  }

  function render(report) {
    summary.textContent = report.comparisons
      ? "agree on " + percent(report.agreement_rate) + " of " + report.comparisons + " comparisons"
      : "no item labelled twice yet";
    if (!report.annotators.length) {
      body.replaceChildren(el("tr", null, el("td", { colSpan: 4, className: "muted" }, "No labels yet")));
      return;
    }
    body.replaceChildren(...report.annotators.flatMap((row) => [
      el("tr", { className: "group-start" + (row.excluded ? " muted" : ""), dataset: { annotator: row.username, excluded: String(row.excluded) } }, [
        el("td", null, [row.username, row.excluded ? el("span", { className: "badge badge--muted" }, "excluded") : null]),
        el("td", { className: "num", dataset: { testid: "labels-" + row.username } }, row.labels),
        el("td", { className: "num", title: row.comparisons + " comparisons" }, percent(row.agreement_rate)),
        el("td", { className: "num" }, formatNumber(row.accuracy, 2)),
      ]),
      details(row, report.has_champion),
    ]));
  }

  function renderHistory(changes) {
    if (!changes.length) {
      history.replaceChildren(el("li", { className: "muted" }, "None yet."));
      return;
    }
    history.replaceChildren(...changes.map((change) =>
      el("li", { dataset: { testid: "exclusion-change-" + change.id } }, [
        el("span", { className: "badge badge--" + (change.action === "excluded" ? "danger" : "success") }, change.action),
        " " + change.annotator + " by " + (change.changed_by || "a deleted user") + ", " + formatDate(change.created_at, true),
        change.reason ? el("span", { className: "muted" }, ": " + change.reason) : null,
      ])
    ));
  }

  /** The training policy form on this page lists exclusions too: keep its boxes in step, so saving it does not undo a toggle. */
  function syncPolicyForm(report) {
    if (!policyForm) return;
    for (const row of report.annotators) {
      const box = policyForm.querySelector('input[name="excluded_annotator_ids"][value="' + row.annotator_id + '"]');
      if (box) box.checked = row.excluded;
    }
  }

  async function load() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    loadedAt = Date.now();
    try {
      if (!shownKey) {
        // First screen: the figures kept in the label tallies, in milliseconds at any size; the
        // statistics that read windows of labels (up to a second on a big project) come next.
        const [quick, changes] = await Promise.all([
          api("GET", base + "annotator-report/?details=false"), api("GET", base + "exclusion-changes/"),
        ]);
        render(quick.data);
        renderHistory(changes.data);
        syncPolicyForm(quick.data);
      }
      const [report, changes] = await Promise.all([api("GET", base + "annotator-report/"), api("GET", base + "exclusion-changes/")]);
      const key = JSON.stringify(report.data) + JSON.stringify(changes.data);
      if (key !== shownKey) {
        shownKey = key;
        render(report.data);
        renderHistory(changes.data);
        syncPolicyForm(report.data);
      }
    } catch (error) {
      toast(error.detail);
    } finally {
      loading = false;
      if (again) {
        again = false;
        load();
      }
    }
  }

  body.addEventListener("click", async (event) => {
    const button = event.target.closest('[data-action="toggle-exclusion"]');
    if (!button) return;
    button.disabled = true;
    try {
      await api("POST", base + "annotators/" + button.dataset.annotatorId + "/exclusion/", {
        excluded: button.dataset.exclude === "true",
        reason: reasonInput ? reasonInput.value.trim() : "",
      });
      if (reasonInput) reasonInput.value = "";
    } catch (error) {
      toast(error.detail);
    }
    await load();
  });

  root.addEventListener("results:refreshed", () => {
    if (Date.now() - loadedAt >= REFRESH_MS) load();
  });
  load();
})();
