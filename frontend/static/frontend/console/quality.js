/* Quality page: the project's agreement, Krippendorff's alpha, position bias, gold accuracy and
 * speed (GET quality-statistics), and the response pairs where the champion reward model
 * contradicts the people's majority, most confident first (GET model-disagreements), each
 * linking to its item page. Loaded once per page view; the numbers move slowly.
 */
(function () {
  "use strict";

  const { api, toast, el, formatNumber } = window.Studio;
  const root = document.getElementById("quality");
  if (!root) return;

  const config = JSON.parse(document.getElementById("quality-config").textContent);
  const base = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/";
  const region = (name) => root.querySelector('[data-region="' + name + '"]');

  const percent = (value) => (value === null || value === undefined ? "—" : (value * 100).toFixed(1) + " %");

  /** "p = 0.021", "p < 0.001": a p-value as people read it. */
  function pValue(p) {
    if (p === null || p === undefined) return "";
    return p < 0.001 ? "p < 0.001" : "p = " + p.toFixed(3);
  }

  function renderStatistics(stats) {
    region("agreement").textContent = percent(stats.agreement_rate);
    region("agreement-sub").textContent = stats.comparisons
      ? stats.comparisons + " comparisons · mean accuracy " + formatNumber(stats.pool_accuracy, 2)
      : "no item labelled twice yet";
    const alpha = stats.alpha;
    region("alpha").textContent = formatNumber(alpha.nominal, 3);
    region("alpha-sub").textContent = alpha.units
      ? "ordinal (strength) " + formatNumber(alpha.ordinal, 3) + " · " + alpha.units + " pairs of " + alpha.items + " items"
      : "needs items labelled twice";
    const position = stats.position_bias;
    if (!position) {
      region("position").textContent = "—";
      region("position-sub").textContent = "ranking project: not measured";
    } else {
      region("position").textContent = percent(position.left_share);
      region("position-sub").textContent = position.decisive
        ? position.left + " of " + position.decisive + " · " + pValue(position.p_value)
        : "no decisive labels yet";
      region("position").classList.toggle("quality-flag", position.p_value !== null && position.p_value < 0.01);
    }
    region("gold").textContent = percent(stats.gold.accuracy);
    const wrong = stats.gold.labels - stats.gold.correct;
    region("gold-sub").replaceChildren(
      stats.gold.labels ? stats.gold.correct + " of " + stats.gold.labels + " gold labels right" : "no gold labels yet",
      ...(wrong > 0 ? [" · ", el("a", { href: root.dataset.labelsUrl + "?gold=wrong", dataset: { testid: "wrong-gold-link" } }, "see the " + wrong + " wrong")] : [])
    );
    const rule = "reading time is the words shown at " + config.reading_words_per_minute +
      " words a minute, at least " + config.min_reading_seconds + " s";
    region("speed").textContent = stats.speed.timed
      ? "Speed: " + stats.speed.too_fast + " of " + stats.speed.timed + " timed labels (of the newest " +
        config.speed_window + ") were faster than reading time (" + rule + ")."
      : "Speed: no timed labels yet (" + rule + ").";
  }

  function side(value) {
    return el("div", null, [
      el("span", { className: "chip" }, value.model_name || "—"),
      " ",
      el("span", { className: "mono small muted" }, formatNumber(value.score, 2)),
      el("div", { className: "clamp small", title: value.text_preview }, value.text_preview),
    ]);
  }

  function renderDisagreements(data) {
    const body = region("disagreements");
    const summary = region("disagreements-summary");
    if (!data.champion) {
      summary.textContent = "";
      body.replaceChildren(el("tr", null, el("td", { colSpan: 6, className: "muted" }, "No champion model yet.")));
      return;
    }
    // The version whose scores were read: the champion, or the previous one while a new champion scores.
    summary.textContent = "scores of v" + data.champion.version + " · newest " + data.labels_read + " labels";
    if (!data.results.length) {
      body.replaceChildren(el("tr", null, el("td", { colSpan: 6, className: "muted" }, "The champion agrees with every majority.")));
      return;
    }
    body.replaceChildren(...data.results.map((row) =>
      el("tr", { dataset: { testid: "disagreement-" + row.item_id } }, [
        el("td", { className: "cell-prompt" }, [
          el("span", { className: "mono small muted" }, row.prompt_external_id),
          el("div", { className: "clamp", title: row.prompt_preview }, row.prompt_preview),
        ]),
        el("td", null, side(row.people_preferred)),
        el("td", null, side(row.model_preferred)),
        el("td", { className: "num" }, row.votes_for_people + " / " + row.votes),
        el("td", { className: "num" }, percent(row.confidence)),
        el("td", { className: "actions" }, el("a", { className: "btn btn--sm", href: root.dataset.itemsRoot + row.item_id + "/" }, "Open item")),
      ])
    ));
  }

  api("GET", base + "quality-statistics/").then(({ data }) => renderStatistics(data), (error) => toast(error.detail));
  // Admins only (it names the models): the table is on the page only for them.
  if (region("disagreements")) {
    api("GET", base + "model-disagreements/?limit=100").then(({ data }) => renderDisagreements(data), (error) => {
      region("disagreements").replaceChildren(el("tr", null, el("td", { colSpan: 6, className: "muted" }, error.detail)));
    });
  }
  region("updated").textContent = "Loaded " + new Date().toLocaleTimeString();
})();
