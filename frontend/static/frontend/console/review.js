/* Label browser: a project's labels (or skips, or items) with filters, one server page at a time.
 *
 * The filters live in the query string of the API call (annotation.api.review); pages are keyset
 * pages, walked with the server's next/previous links. Every filter change starts again from the
 * first page. Responses show as the annotator saw them (A = left), with model names.
 *
 * The tab and the filters are also the page's own query string (?tab=items&progress=open, the
 * form's field names and values), kept up to date as they change, so a filtered view can be
 * bookmarked, shared or linked to: the Results page links an annotator's wrong gold labels here.
 */
(function () {
  "use strict";

  const { api, toast, el, formatDate, formatNumber } = window.Studio;
  const root = document.getElementById("review-browser");
  if (!root) return;
  const config = JSON.parse(document.getElementById("review-config").textContent);
  const urls = {
    labels: config.api_root + "projects/" + config.project_id + "/review/labels/",
    skips: config.api_root + "projects/" + config.project_id + "/review/skips/",
    items: config.api_root + "projects/" + config.project_id + "/review/items/",
    item: (itemId) => config.item_url_zero.replace(/0\/$/, itemId + "/"),
  };
  const region = (name) => root.querySelector('[data-region="' + name + '"]');
  const form = region("filters");
  const ui = {
    head: region("head"), rows: region("rows"), page: region("page"),
    previous: root.querySelector('[data-action="previous"]'), next: root.querySelector('[data-action="next"]'),
  };
  const OUTCOME_NAMES = { A: "A preferred", B: "B preferred", tie: "tie", both_bad: "both bad", ranking_tie: "with a tie", ranking_strict: "no tie" };
  const STATUS_BADGE = { unreviewed: "badge--muted", accepted: "badge--success", rejected: "badge--danger", corrected: "badge--info" };
  const state = { tab: "labels", page: 1, links: { next: null, previous: null }, request: 0 };

  // What the server's choice lists (annotation.review: GOLD_FILTERS, ITEM_PROGRESS) read as on the page.
  const GOLD_FILTER_NAMES = { item: "Gold items", ordinary: "Ordinary items", right: "Right on gold", wrong: "Wrong on gold" };
  const ITEM_PROGRESS_NAMES = { open: "Open (labels wanted)", finished: "Finished", unlabelled: "No labels yet" };

  /** Adds ``options`` to the select named ``name``, or to the one ``testid`` names where two tabs share a name. */
  function fillSelect(name, options, testid) {
    const select = testid ? form.querySelector('[data-testid="' + testid + '"]') : form.elements[name];
    for (const option of options) select.appendChild(el("option", { value: option.value, textContent: option.label }));
  }
  fillSelect("annotators", config.annotators.map((user) => ({ value: String(user.id), label: user.username })));
  fillSelect("outcome", config.outcomes.map((value) => ({ value: value, label: OUTCOME_NAMES[value] || value })));
  fillSelect("flag", config.flags);
  fillSelect("gold", config.gold_filters.map((value) => ({ value: value, label: GOLD_FILTER_NAMES[value] || value })), "filter-gold");
  fillSelect("progress", config.item_progress.map((value) => ({ value: value, label: ITEM_PROGRESS_NAMES[value] || value })));
  fillSelect("review_status", config.review_statuses.map((value) => ({ value: value, label: value })));

  /** The API URL for the first page under the current filters. Dates are whole local days. */
  function firstPageUrl() {
    const params = new URLSearchParams();
    for (const field of form.elements) {
      if (!field.name || !field.value || field.closest("[hidden]")) continue;
      if (field.name === "since" || field.name === "until") {
        const day = new Date(field.value + "T00:00:00");
        if (field.name === "until") day.setDate(day.getDate() + 1);
        params.set(field.name, day.toISOString());
      } else {
        params.set(field.name, field.value.trim());
      }
    }
    params.set("page_size", "25");
    return urls[state.tab] + "?" + params.toString();
  }

  /** "gold", with whether the label matches the known answer (null: both bad, no verdict). */
  function goldBadge(matches) {
    const [text, kind] = matches === null ? ["gold", "badge--info"] : matches ? ["gold ✓", "badge--success"] : ["gold ✗", "badge--danger"];
    return el("span", { className: "badge " + kind, title: matches === null ? "A gold item" : matches ? "Matches the gold answer" : "Contradicts the gold answer", dataset: { testid: "gold-badge" } }, text);
  }

  function badge(status) {
    return el("span", { className: "badge " + (STATUS_BADGE[status] || "badge--muted"), dataset: { testid: "review-status" } }, status);
  }

  function markdown(html, className) {
    const node = el("div", { className: "md " + (className || "") });
    node.innerHTML = html; // sanitised on the server (annotation.rendering), as the workbench shows it
    return node;
  }

  function labelRow(label) {
    const lastUser = label.conversation.filter((message) => message.role === "user").pop() || label.conversation[label.conversation.length - 1];
    const winnerRank = 1;
    const shown = el("div", { className: "review-shown" }, label.responses.map((response) =>
      el("div", { className: "review-shown__card" + (response.rank === winnerRank && label.outcome !== "tie" && label.outcome !== "both_bad" ? " is-winner" : "") }, [
        el("div", { className: "review-shown__head" }, [
          el("span", { className: "pos pos--" + response.position }, response.position),
          el("span", { className: "chip" }, response.model_name || "unnamed model"),
          response.rank ? el("span", { className: "muted" }, "rank " + response.rank) : null,
        ]),
        markdown(response.html, "review-preview"),
      ])
    ));
    const flags = label.flags.map((flag) => el("span", { className: "badge badge--danger" }, flag.flag.replace("_", " ")));
    return el("tr", { dataset: { testid: "label-row", labelId: String(label.id), itemId: String(label.item_id) } }, [
      el("td", { className: "nowrap" }, [
        el("a", { href: urls.item(label.item_id), dataset: { testid: "open-item" } }, "Item " + label.item_id),
        label.gold_item ? el("span", {}, [" ", goldBadge(label.matches_gold)]) : null,
        el("div", { className: "muted small" }, "label " + label.id),
        el("div", { className: "muted small" }, label.prompt_external_id),
      ]),
      el("td", { className: "cell-conversation" }, lastUser ? markdown(lastUser.html, "review-preview") : "—"),
      el("td", {}, shown),
      el("td", {}, [
        el("div", { className: "strong", dataset: { testid: "label-outcome" } }, OUTCOME_NAMES[label.outcome] || label.outcome),
        label.strength ? el("div", { className: "muted small" }, config.strengths[label.strength] || String(label.strength)) : null,
        el("div", { className: "flags" }, flags),
      ]),
      el("td", {}, label.rationale ? el("div", { className: "clamp small" }, label.rationale) : el("span", { className: "muted" }, "—")),
      el("td", { className: "nowrap" }, [
        el("div", {}, label.annotator.username),
        el("div", { className: "muted small" }, formatNumber(label.seconds_spent, 0) + " s"),
      ]),
      el("td", {}, badge(label.review_status)),
      el("td", { className: "nowrap muted small" }, formatDate(label.created_at, true)),
    ]);
  }

  function itemRow(item) {
    const lastUser = item.conversation.filter((message) => message.role === "user").pop() || item.conversation[item.conversation.length - 1];
    const progress = item.gold
      ? el("span", { className: "muted" }, item.label_count + " (gold: never work to finish)")
      : el("span", { className: item.label_count >= item.labels_per_item ? "" : "strong" }, item.label_count + " of " + item.labels_per_item);
    return el("tr", { dataset: { testid: "item-row", itemId: String(item.id) } }, [
      el("td", { className: "nowrap" }, [
        el("a", { href: urls.item(item.id), dataset: { testid: "open-item" } }, "Item " + item.id),
        item.gold ? el("span", {}, [" ", goldBadge(null)]) : null,
        el("div", { className: "muted small" }, item.prompt_external_id),
      ]),
      el("td", { className: "cell-conversation" }, lastUser ? markdown(lastUser.html, "review-preview") : "—"),
      el("td", { className: "nowrap", dataset: { testid: "item-progress" } }, progress),
      el("td", { className: "nowrap", dataset: { testid: "item-agreement" } },
        item.agreement === null ? el("span", { className: "muted" }, "—") : Math.round(item.agreement * 100) + " %"),
      el("td", { className: "nowrap" }, item.open_leases ? item.open_leases + " now" : el("span", { className: "muted" }, "—")),
      el("td", { className: "nowrap muted small" }, formatDate(item.created_at, true)),
    ]);
  }

  function skipRow(skip) {
    return el("tr", { dataset: { testid: "skip-row" } }, [
      el("td", { className: "nowrap" }, el("a", { href: urls.item(skip.item_id) }, "Item " + skip.item_id)),
      el("td", { className: "muted small" }, skip.prompt_external_id),
      el("td", {}, skip.annotator.username),
      el("td", {}, skip.skip_reason || el("span", { className: "muted" }, "no reason given")),
      el("td", { className: "nowrap muted small" }, formatDate(skip.finished_at, true)),
    ]);
  }

  const HEADS = {
    labels: ["Item", "Prompt", "Responses as shown", "Outcome", "Rationale", "Annotator", "Review", "Created"],
    skips: ["Item", "Prompt id", "Annotator", "Reason", "Skipped"],
    items: ["Item", "Prompt", "Labels", "Agreement", "Being labelled", "Imported"],
  };
  const ROWS = { labels: (row) => labelRow(row), skips: (row) => skipRow(row), items: (row) => itemRow(row) };

  async function load(url) {
    const request = ++state.request;
    root.dataset.loading = "true";
    try {
      const { data } = await api("GET", url);
      if (request !== state.request) return;
      const rows = data.results.map(ROWS[state.tab]);
      ui.head.replaceChildren(el("tr", {}, HEADS[state.tab].map((name) => el("th", {}, name))));
      ui.rows.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { className: "muted", colSpan: HEADS[state.tab].length, dataset: { testid: "review-empty" } }, "Nothing matches these filters."))]));
      state.links = { next: data.next, previous: data.previous };
      ui.next.disabled = !data.next;
      ui.previous.disabled = !data.previous;
      ui.page.textContent = "Page " + state.page;
    } catch (error) {
      if (request !== state.request) return;
      ui.rows.replaceChildren(el("tr", {}, el("td", { className: "muted" }, error.detail)));
      toast(error.detail);
    } finally {
      if (request === state.request) root.dataset.loading = "false";
    }
  }

  /** The visible filters as they stand in the form (dates as typed), and the tab unless it is the first. */
  function pageQuery() {
    const params = new URLSearchParams();
    if (state.tab !== "labels") params.set("tab", state.tab);
    for (const field of form.elements) {
      if (field.name && field.value && !field.closest("[hidden]")) params.set(field.name, field.value.trim());
    }
    return params.toString();
  }

  function reload() {
    state.page = 1;
    const query = pageQuery();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
    load(firstPageUrl());
  }

  function showTab(tab) {
    state.tab = tab;
    for (const other of root.querySelectorAll("[data-tab]")) {
      other.classList.toggle("is-active", other.dataset.tab === tab);
      other.setAttribute("aria-selected", String(other.dataset.tab === tab));
    }
    for (const field of form.querySelectorAll("[data-tab-only]")) field.hidden = !field.dataset.tabOnly.split(" ").includes(tab);
  }

  /** The tab and filters a link or bookmark names (see the top of this file); unknown ones are ignored. */
  function restoreFromAddress() {
    const params = new URLSearchParams(window.location.search);
    if (Object.hasOwn(HEADS, params.get("tab") || "")) showTab(params.get("tab"));
    for (const field of form.elements) {
      if (!field.name || !params.has(field.name) || field.closest("[hidden]")) continue;
      const value = params.get(field.name);
      if (field.tagName === "SELECT" && !Array.from(field.options).some((option) => option.value === value)) continue;
      field.value = value;
    }
  }

  form.addEventListener("change", reload);
  let typing = null;
  form.addEventListener("input", (event) => {
    if (!["skip_reason", "prompt", "agreement_below"].includes(event.target.name)) return;
    clearTimeout(typing);
    typing = setTimeout(reload, 300);
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); reload(); });
  ui.next.addEventListener("click", () => { if (state.links.next) { state.page += 1; load(state.links.next); } });
  ui.previous.addEventListener("click", () => { if (state.links.previous) { state.page -= 1; load(state.links.previous); } });
  for (const button of root.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => {
      showTab(button.dataset.tab);
      reload();
    });
  }
  restoreFromAddress();
  reload();
})();
