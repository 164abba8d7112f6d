/* Item review page: the conversation, the responses (with model names), and every label on the item
 * side by side, each in its own shown order, with its review history and the review actions.
 *
 * Decisions go to POST labels/{id}/review/ (annotation.api.review); the page then reloads the item,
 * so counts and history always come from the server. Admins also set or clear the item's gold
 * answer here (PUT / DELETE items/{id}/gold/, annotation.api.quality): typed in the responses'
 * numbers on this page, or taken from a label.
 */
(function () {
  "use strict";

  const { api, toast, el, formatDate, formatNumber } = window.Studio;
  const root = document.getElementById("review-item");
  if (!root) return;
  const config = JSON.parse(document.getElementById("review-config").textContent);
  const itemUrl = config.api_root + "projects/" + config.project_id + "/review/items/" + config.item_id + "/";
  const reviewUrl = (labelId) => config.api_root + "labels/" + labelId + "/review/";
  const goldUrl = config.api_root + "items/" + config.item_id + "/gold/";
  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const OUTCOME_NAMES = { A: "A preferred", B: "B preferred", tie: "tie", both_bad: "both bad", ranking_tie: "ranking with a tie", ranking_strict: "ranking" };
  const STATUS_BADGE = { unreviewed: "badge--muted", accepted: "badge--success", rejected: "badge--danger", corrected: "badge--info" };
  let models = {}; // response id -> model name
  let numbers = {}; // response id -> its number on this page ("1", "2", ...: import order)
  let idsByNumber = {}; // the reverse

  function markdown(html) {
    const node = el("div", { className: "md" });
    node.innerHTML = html; // sanitised on the server (annotation.rendering)
    return node;
  }

  /** A ranking of response ids as "model-a > model-b = model-c" (groups best first, ties joined by "="). */
  function rankingText(ranking, positionOf) {
    return ranking.map((group) => group.map((id) => (positionOf && positionOf[id] ? positionOf[id] + " " : "") + (models[id] || "#" + id)).join(" = ")).join("  >  ");
  }

  /** "B > A C" (positions, best first; a space puts two in one group) -> [["B"], ["A", "C"]]. */
  function parseRanking(text) {
    return text.split(">").map((group) => group.trim().toUpperCase().split(/[\s,=]+/).filter(Boolean));
  }

  /** "2 > 1 3" or "2 > 1 = 3" (this page's response numbers, best first) -> response ids, or a sentence saying what is wrong. */
  function rankingFromNumbers(text) {
    const groups = text.split(">").map((group) => group.trim().split(/[\s,=]+/).filter(Boolean));
    if (!groups.length || groups.some((group) => !group.length)) return { error: "Write the response numbers best first, e.g. 2 > 1 (ties: 1 = 2)." };
    const unknown = groups.flat().filter((number) => !idsByNumber[number]);
    if (unknown.length) return { error: "No response " + unknown.join(", ") + " on this item: its responses are " + Object.keys(idsByNumber).join(", ") + "." };
    return { ranking: groups.map((group) => group.map((number) => idsByNumber[number])) };
  }

  /** Makes the item gold with ``ranking`` (response ids), or ordinary with null; reloads the page's data. */
  async function saveGold(ranking, button, error) {
    button.disabled = true;
    if (error) error.hidden = true;
    try {
      if (ranking === null) await api("DELETE", goldUrl);
      else await api("PUT", goldUrl, { ranking: ranking });
      toast(ranking === null ? "Item " + config.item_id + " is an ordinary item again." : "Item " + config.item_id + " is gold: " + rankingText(ranking, numbers) + ".", "success");
      await load();
    } catch (failure) {
      const reasons = [].concat((failure.fields && failure.fields.ranking) || []);
      const message = failure.detail + (reasons.length && !failure.detail.includes(reasons[0]) ? " " + reasons.join(" ") : "");
      if (error) {
        error.textContent = message;
        error.hidden = false;
      } else {
        toast(message);
      }
      button.disabled = false;
    }
  }

  /** The gold panel: the answer if the item has one; for admins, the controls to set, change or clear it. */
  function goldPanel(item) {
    const answer = item.gold_ranking
      ? el("div", { dataset: { testid: "gold-answer-text" } }, [el("span", { className: "field__label" }, "Gold answer: "), rankingText(item.gold_ranking, numbers)])
      : el("div", { className: "muted small", dataset: { testid: "gold-answer-text" } }, "Not a gold item. A gold item has a known answer and is mixed into annotators' queues at the project's gold rate to measure them.");
    if (!config.can_mark_gold) return [answer];
    const input = el("input", {
      type: "text", className: "review-gold__input", placeholder: "Answer by response number, best first, e.g. 1 > 2",
      value: item.gold_ranking ? item.gold_ranking.map((group) => group.map((id) => numbers[id]).join(" = ")).join(" > ") : "",
      dataset: { testid: "gold-input" }, attrs: { "aria-label": "Gold answer, by response number" },
    });
    const error = el("p", { className: "field-error", hidden: true, dataset: { testid: "gold-error" } });
    const save = el("button", { type: "submit", className: "btn btn--sm btn--primary", dataset: { testid: "gold-save" } }, item.gold_ranking ? "Change answer" : "Make gold");
    const form = el("form", { className: "review-gold__form" }, [input, save]);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const parsed = rankingFromNumbers(input.value);
      if (parsed.error) {
        error.textContent = parsed.error;
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        return;
      }
      input.removeAttribute("aria-invalid");
      saveGold(parsed.ranking, save, error);
    });
    const nodes = [answer, form, error];
    if (item.gold_ranking) {
      const clear = el("button", { type: "button", className: "btn btn--sm", dataset: { testid: "gold-clear" } }, "Make ordinary");
      clear.addEventListener("click", () => saveGold(null, clear, error));
      form.appendChild(clear);
    }
    return nodes;
  }

  function historyList(reviews) {
    if (!reviews.length) return el("p", { className: "muted small" }, "Not reviewed yet.");
    return el("ol", { className: "review-history", dataset: { testid: "review-history" } }, reviews.map((entry) =>
      el("li", { dataset: { testid: "history-entry", decision: entry.decision } }, [
        el("span", { className: "strong" }, entry.decision), " by ", entry.reviewer || "a deleted user",
        el("span", { className: "muted" }, " · " + formatDate(entry.created_at, true)),
        entry.reason ? el("div", {}, entry.reason) : null,
        entry.corrected_ranking ? el("div", { className: "muted" }, "→ " + rankingText(entry.corrected_ranking)) : null,
      ])
    ));
  }

  function actions(label) {
    const reason = el("textarea", { placeholder: "Reason (required to reject or correct)", maxLength: 2000, rows: 2, dataset: { testid: "review-reason" } });
    const correction = el("input", { type: "text", placeholder: "Corrected ranking, e.g. B > A", dataset: { testid: "review-correction" } });
    const error = el("p", { className: "field-error", hidden: true, dataset: { testid: "review-error" } });
    async function decide(decision, button) {
      const body = { decision: decision, reason: reason.value };
      if (decision === "correct") body.corrected_ranking = parseRanking(correction.value);
      button.disabled = true; // a double click sends one decision (the server ignores a repeat anyway)
      error.hidden = true;
      try {
        const { data } = await api("POST", reviewUrl(label.id), body);
        toast(data.recorded ? "Label " + label.id + ": " + data.review_status + "." : "Already " + data.review_status + ".", "success");
        await load();
      } catch (failure) {
        error.textContent = failure.detail;
        error.hidden = false;
        button.disabled = false;
      }
    }
    const button = (decision, text, extra) => {
      const node = el("button", { type: "button", className: "btn btn--sm " + (extra || ""), dataset: { testid: "review-" + decision } }, text);
      node.addEventListener("click", () => decide(decision, node));
      return node;
    };
    const buttons = [];
    if (label.review_status !== "accepted") buttons.push(button("accept", "Accept"));
    if (label.review_status !== "rejected") buttons.push(button("reject", "Reject"));
    buttons.push(button("correct", "Correct"));
    if (label.review_status !== "unreviewed") buttons.push(button("revert", "Revert"));
    if (config.can_mark_gold) {
      // What the label says now: its correction if a reviewer corrected it.
      const answer = label.corrected_ranking || label.ranking;
      const useAsGold = el("button", { type: "button", className: "btn btn--sm review-actions__gold", dataset: { testid: "gold-from-label" }, title: rankingText(answer, numbers) }, "Use as gold answer");
      useAsGold.addEventListener("click", () => saveGold(answer, useAsGold, error));
      buttons.push(useAsGold);
    }
    return el("div", { className: "review-actions" }, [reason, correction, error, el("div", { className: "review-actions__buttons" }, buttons)]);
  }

  function labelCard(label, item) {
    const positionOf = {};
    for (const response of label.shown) positionOf[response.id] = response.position;
    const ratings = Object.entries(label.ratings || {}).map(([responseId, scores]) =>
      (positionOf[responseId] || "#" + responseId) + ": " + Object.entries(scores).map(([key, score]) => key + " " + score).join(", ")
    );
    const flags = label.flags.map((flag) => flag.flag.replace("_", " ") + (flag.response_id ? " (" + (positionOf[flag.response_id] || "#" + flag.response_id) + ")" : ""));
    return el("article", {
      className: "card review-label" + (label.review_status === "rejected" ? " is-rejected" : ""),
      dataset: { testid: "item-label", labelId: String(label.id), reviewStatus: label.review_status },
    }, [
      el("div", { className: "review-label__head" }, [
        el("span", { className: "strong" }, label.annotator.username),
        label.matches_gold === null ? null : el("span", {
          className: "badge " + (label.matches_gold ? "badge--success" : "badge--danger"), dataset: { testid: "label-gold" },
        }, label.matches_gold ? "matches gold" : "contradicts gold"),
        el("span", { className: "badge " + (STATUS_BADGE[label.review_status] || "badge--muted"), dataset: { testid: "review-status" } }, label.review_status),
      ]),
      el("dl", { className: "review-kv" }, [
        el("dt", {}, "Shown"), el("dd", {}, label.shown.map((response) => response.position + " = " + (response.model_name || "#" + response.id)).join(", ")),
        el("dt", {}, "Outcome"), el("dd", { dataset: { testid: "label-outcome" } }, OUTCOME_NAMES[label.outcome] || label.outcome),
        el("dt", {}, "Ranking"), el("dd", {}, rankingText(label.ranking, positionOf)),
        label.corrected_ranking ? el("dt", {}, "Corrected") : null,
        label.corrected_ranking ? el("dd", {}, rankingText(label.corrected_ranking, positionOf)) : null,
        el("dt", {}, "Strength"), el("dd", {}, label.strength ? config.strengths[label.strength] : "—"),
        el("dt", {}, "Ratings"), el("dd", {}, ratings.length ? ratings.join("; ") : "—"),
        el("dt", {}, "Flags"), el("dd", {}, flags.length ? flags.join(", ") : "—"),
        el("dt", {}, "Rationale"), el("dd", { dataset: { testid: "label-rationale" } }, label.rationale || "—"),
        el("dt", {}, "Time"), el("dd", {}, formatNumber(label.seconds_spent, 0) + " s · " + formatDate(label.created_at, true)),
      ]),
      el("div", {}, [el("div", { className: "field__label" }, "Review history"), historyList(label.reviews)]),
      actions(label, item),
    ]);
  }

  async function load() {
    root.dataset.loading = "true";
    try {
      const { data: item } = await api("GET", itemUrl);
      models = {};
      numbers = {};
      idsByNumber = {};
      item.responses.forEach((response, index) => {
        models[response.id] = response.model_name || "#" + response.id;
        numbers[response.id] = String(index + 1);
        idsByNumber[String(index + 1)] = response.id;
      });
      region("prompt-id").textContent = item.prompt_external_id;
      region("summary").textContent = item.label_count + " counted label" + (item.label_count === 1 ? "" : "s") + ", " + item.labels_per_item + " wanted" +
        (item.label_count > item.labels_per_item ? " (more than wanted: a rejected label was reinstated after the item was relabelled)" : "");
      region("conversation").replaceChildren(...item.conversation.map((message) =>
        el("div", { className: "review-message" }, [el("div", { className: "field__label" }, message.role), markdown(message.html)])
      ));
      region("responses").replaceChildren(...item.responses.map((response) =>
        el("div", { className: "review-shown__card", dataset: { testid: "item-response" } }, [
          el("div", { className: "review-shown__head" }, [
            el("span", { className: "review-number", title: "Response " + numbers[response.id], dataset: { testid: "response-number" } }, numbers[response.id]),
            el("span", { className: "chip" }, response.model_name || "unnamed model"), el("span", { className: "muted" }, "#" + response.id),
          ]),
          markdown(response.html),
        ])
      ));
      const gold = region("gold");
      region("gold-badge").hidden = !item.gold_ranking;
      gold.hidden = !item.gold_ranking && !config.can_mark_gold;
      gold.replaceChildren(...goldPanel(item));
      region("labels").replaceChildren(...(item.labels.length ? item.labels.map((label) => labelCard(label, item)) : [el("p", { className: "muted" }, "No labels on this item yet.")]));
    } catch (error) {
      toast(error.detail);
    } finally {
      root.dataset.loading = "false";
    }
  }
  load();
})();
