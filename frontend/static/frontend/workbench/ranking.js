/* Ranking controls for 3-9 responses (InstructGPT style): a ranking board of groups, best
 * first; responses in one group are tied.
 *
 * Keyboard: a response's letter selects it, and an unranked one goes to the next rank, so
 * typing "b a c d" ranks B > A > C > D. Arrows move the selection a rank up or down, a digit
 * puts it at that rank, t ties it with the rank above, Backspace unranks it, Enter submits.
 * Mouse: drag a chip (or a card's header) onto a rank to tie, between ranks to insert,
 * anywhere else on the board to append as the last rank, or back to the tray to unrank.
 *
 * Exposed as Workbench.formats.ranking(ctx) -> controller, and Workbench.rankingModel (pure).
 */
(function () {
  "use strict";

  const Workbench = (window.Workbench = window.Workbench || {});
  Workbench.formats = Workbench.formats || {};
  const { el } = window.Studio;

  /* ---------------------------------------------------------------- model
   * Pure functions over `groups` ([["B"], ["A", "C"]]); each returns a new array and never
   * leaves an empty group behind. */

  function indexOf(groups, position) {
    return groups.findIndex((group) => group.includes(position));
  }

  function without(groups, position) {
    return groups.map((group) => group.filter((p) => p !== position)).filter((group) => group.length);
  }

  /** `position` alone at rank `index` (0-based), pushing the ranks below down. */
  function insertAt(groups, position, index) {
    const rest = without(groups, position);
    const at = Math.max(0, Math.min(index, rest.length));
    return rest.slice(0, at).concat([[position]], rest.slice(at));
  }

  function joinGroup(groups, position, index) {
    const target = groups[index];
    if (!target || target.includes(position)) return groups;
    const rest = without(groups, position);
    const at = indexOf(rest, target[0]);
    return rest.map((group, i) => (i === at ? group.concat([position]) : group));
  }

  /** One rank up (-1) or down (+1): a tied response steps out of its group; a lone one swaps. */
  function move(groups, position, step) {
    const index = indexOf(groups, position);
    if (index === -1) return insertAt(groups, position, groups.length);
    if (groups[index].length > 1) return insertAt(groups, position, step < 0 ? index : index + 1);
    const other = index + step;
    if (other < 0 || other >= groups.length) return groups;
    const swapped = groups.slice();
    [swapped[index], swapped[other]] = [swapped[other], swapped[index]];
    return swapped;
  }

  /** Tie with the rank above (the one below for the top rank; the last rank if unranked). */
  function tie(groups, position) {
    const index = indexOf(groups, position);
    if (index === -1) return groups.length ? joinGroup(groups, position, groups.length - 1) : groups;
    if (index > 0) return joinGroup(groups, position, index - 1);
    return groups[0].length === 1 && groups.length > 1 ? joinGroup(groups, position, 1) : groups;
  }

  Workbench.rankingModel = { indexOf, without, insertAt, joinGroup, move, tie };

  const ORDINALS = ["1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th"];

  /* ---------------------------------------------------------------- controller */

  Workbench.formats.ranking = function ranking(ctx) {
    const root = ctx.root;
    const board = root.querySelector('[data-region="rank-board"]');
    const list = root.querySelector('[data-region="rank-list"]');
    const tray = root.querySelector('[data-region="rank-tray"]');
    let shown = null; // the item the board shows

    function update(item, groups, focus) {
      item.answer.ranking = groups;
      if (focus !== undefined) item.answer.focus = focus;
      ctx.clearError(item, "ranking");
      render(item);
      ctx.onFocusChange(item);
    }

    function chip(item, position) {
      const response = item.assignment.responses.find((r) => r.position === position);
      return el("button", {
        type: "button",
        className: "rank-chip pos--" + position + (item.answer.focus === position ? " is-focused" : ""),
        draggable: true,
        title: response.text.slice(0, 140),
        dataset: { dragPosition: position, rankChip: position, testid: "rank-chip-" + position },
        attrs: { "aria-pressed": String(item.answer.focus === position) },
      }, position);
    }

    function render(item) {
      shown = item;
      const groups = item.answer.ranking;
      const nodes = [el("li", { className: "rank-gap", dataset: { drop: "gap", index: "0" }, attrs: { "aria-hidden": "true" } })];
      groups.forEach((group, index) => {
        nodes.push(
          el("li", {
            className: "rank-group" + (group.length > 1 ? " is-tied" : ""),
            dataset: { drop: "group", index: String(index), testid: "rank-group-" + (index + 1) },
          }, [
            el("span", { className: "rank-group__num" }, String(index + 1) + (group.length > 1 ? "=" : "")),
            ...group.map((position) => chip(item, position)),
          ]),
          el("li", { className: "rank-gap", dataset: { drop: "gap", index: String(index + 1) }, attrs: { "aria-hidden": "true" } })
        );
      });
      if (!groups.length) {
        nodes.push(el("li", { className: "rank-empty muted" }, "Type the letters best first, or drag responses here"));
      }
      list.replaceChildren(...nodes);
      const unranked = item.positions.filter((position) => indexOf(groups, position) === -1);
      tray.replaceChildren(
        el("span", { className: "rank-tray__label" }, unranked.length ? "Unranked" : "All ranked"),
        ...unranked.map((position) => chip(item, position))
      );
      for (const position of item.positions) {
        const card = item.view.cards[position].root;
        const index = indexOf(groups, position);
        const badge = card.querySelector('[data-region="rank-badge"]');
        badge.textContent = index === -1 ? "unranked" : ORDINALS[index] + (groups[index].length > 1 ? " (tie)" : "");
        badge.classList.toggle("is-ranked", index !== -1);
        card.classList.toggle("is-focused", item.answer.focus === position);
      }
    }

    function select(item, position, place) {
      const groups = item.answer.ranking;
      const next = place && indexOf(groups, position) === -1 ? insertAt(groups, position, groups.length) : groups;
      update(item, next, position);
      const card = item.view.cards[position].root;
      card.scrollIntoView({ block: "nearest", inline: "nearest" });
    }

    /* ---------------------------------------------------------- drag and drop */

    let dragging = null;

    function dropTarget(node) {
      return node instanceof Element ? node.closest("[data-drop]") : null;
    }

    function onDragStart(event) {
      const source = event.target instanceof Element ? event.target.closest("[data-drag-position]") : null;
      if (!source || !shown) return;
      dragging = source.dataset.dragPosition;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragging);
      board.classList.add("is-dragging");
    }

    function onDragOver(event) {
      const target = dragging && dropTarget(event.target);
      if (!target) return;
      event.preventDefault(); // allows the drop
      event.dataTransfer.dropEffect = "move";
      for (const node of board.querySelectorAll(".is-over")) if (node !== target) node.classList.remove("is-over");
      target.classList.add("is-over");
    }

    function onDrop(event) {
      const target = dragging && dropTarget(event.target);
      if (!target || !shown) return;
      event.preventDefault();
      const item = shown;
      const groups = item.answer.ranking;
      const index = Number(target.dataset.index);
      let next = groups;
      if (target.dataset.drop === "group") next = joinGroup(groups, dragging, index);
      else if (target.dataset.drop === "gap") {
        // Dropping just above or below its own lone group changes nothing; compensate the index.
        const from = indexOf(groups, dragging);
        const lone = from !== -1 && groups[from].length === 1;
        next = insertAt(groups, dragging, lone && from < index ? index - 1 : index);
      } else if (target.dataset.drop === "end") next = insertAt(groups, dragging, groups.length);
      else if (target.dataset.drop === "tray") next = without(groups, dragging);
      update(item, next, dragging);
    }

    function onDragEnd() {
      dragging = null;
      board.classList.remove("is-dragging");
      for (const node of board.querySelectorAll(".is-over")) node.classList.remove("is-over");
    }

    for (const zone of [board, ctx.responsesRegion]) zone.addEventListener("dragstart", onDragStart);
    board.addEventListener("dragover", onDragOver);
    board.addEventListener("drop", onDrop);
    document.addEventListener("dragend", onDragEnd);

    /* ---------------------------------------------------------- interface */

    return {
      title: "Rank the responses, best first",
      emptyAnswer: () => ({ ranking: [], focus: null }),
      draggableCards: true,

      /** In a ranking, a response's letter beats a shortcut on the same key. */
      ownsKey(key, item) {
        return Boolean(item) && key.length === 1 && item.positions.includes(key.toUpperCase());
      },

      cardBadge: () => el("span", { className: "rank-badge", dataset: { region: "rank-badge" } }),

      present(item) {
        render(item);
      },

      keydown(event, key, item, startedAt) {
        const focus = item.answer.focus;
        const groups = item.answer.ranking;
        if (this.ownsKey(key, item) && !event.shiftKey) {
          select(item, key.toUpperCase(), true);
        } else if (key === "Enter") {
          ctx.submit(item, startedAt);
        } else if (!focus) {
          if (key === "ArrowUp" || key === "ArrowDown" || /^[1-9]$/.test(key) || key === "t") {
            ctx.toast("Select a response first: press its letter.", "info");
            return true;
          }
          return false;
        } else if (key === "ArrowUp" || key === "ArrowDown") {
          update(item, move(groups, focus, key === "ArrowUp" ? -1 : 1));
        } else if (/^[1-9]$/.test(key)) {
          update(item, insertAt(groups, focus, Number(key) - 1));
        } else if (key === "t") {
          update(item, tie(groups, focus));
        } else if (key === "Backspace" || key === "Delete") {
          update(item, without(groups, focus));
        } else if (key === "Escape") {
          update(item, groups, null);
        } else {
          return false;
        }
        return true;
      },

      click(target, item) {
        const chipNode = target.closest("[data-rank-chip]");
        if (chipNode) {
          select(item, chipNode.dataset.rankChip, false);
          return true;
        }
        return false;
      },

      /** A click on a card (not on its controls) selects that response without ranking it. */
      cardClick(position, item) {
        if (item.answer.focus !== position) select(item, position, false);
      },

      answer(item) {
        return { ranking: item.answer.ranking.map((group) => group.slice()) };
      },

      validate(item) {
        const groups = item.answer.ranking;
        const unranked = item.positions.filter((position) => indexOf(groups, position) === -1);
        if (unranked.length) return { ranking: ["Rank every response: " + unranked.join(", ") + " " + (unranked.length === 1 ? "is" : "are") + " not placed yet."] };
        if (groups.length < 2) return { ranking: ["All tied: rank at least two apart, or skip the item."] };
        return {};
      },

      describe(item) {
        return item.answer.ranking.map((group) => group.join(" = ")).join(" > ");
      },

      diffBase: (item) => item.answer.focus || "A",
    };
  };
})();
