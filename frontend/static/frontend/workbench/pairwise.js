/* Pairwise controls: A or B better (with a strength), tie, both bad.
 *
 * The fast path is one key: a/1 or b/2 submits at once with whatever strength is selected
 * on the strength bar (none by default). To give a strength from the keyboard, hold Shift:
 * Shift+A "arms" A, and the next digit 1-4 is the strength and submits. Two keys, no mouse,
 * and a plain a/b never waits for a second key.
 *
 * Exposed as Workbench.formats.pairwise(ctx) -> controller (interface in annotate.js).
 */
(function () {
  "use strict";

  const Workbench = (window.Workbench = window.Workbench || {});
  Workbench.formats = Workbench.formats || {};

  const STRENGTH_NAMES = { 1: "negligibly", 2: "slightly", 3: "better", 4: "much better" };

  Workbench.formats.pairwise = function pairwise(ctx) {
    const root = ctx.root;
    const footer = root.querySelector(".wb-actions--pairwise");
    const strengthBar = footer.querySelector(".strength");
    const strengthButtons = Array.from(footer.querySelectorAll("[data-strength]"));
    const choiceButtons = Array.from(footer.querySelectorAll("[data-choice]"));
    let armed = null; // "A" | "B" while waiting for the strength digit

    function arm(side) {
      armed = side;
      footer.classList.toggle("is-armed", Boolean(side));
      for (const button of choiceButtons) button.classList.toggle("is-armed", button.dataset.choice === side);
    }

    function render(item) {
      const answer = item ? item.answer : { choice: null, strength: null };
      for (const button of strengthButtons) {
        button.setAttribute("aria-checked", String(Number(button.dataset.strength) === answer.strength));
      }
      for (const button of choiceButtons) button.classList.toggle("is-selected", button.dataset.choice === answer.choice);
    }

    /** Record the choice and hand the item to the flow; `startedAt` times the switch. */
    function choose(item, choice, startedAt, strength) {
      arm(null);
      item.answer.choice = choice;
      if (strength !== undefined) item.answer.strength = strength;
      ctx.clearError(item, "choice");
      render(item);
      ctx.submit(item, startedAt);
    }

    function setStrength(item, level) {
      item.answer.strength = item.answer.strength === level ? null : level;
      ctx.clearError(item, "strength");
      render(item);
    }

    return {
      title: "Which response is better?",
      emptyAnswer: () => ({ choice: null, strength: null }),
      ownsKey: () => false,

      present(item) {
        arm(null);
        render(item);
      },

      keydown(event, key, item, startedAt) {
        if (armed) {
          const side = armed;
          // By code, not key: with Shift still held, "3" arrives as "#" on many layouts.
          const digit = /^(Digit|Numpad)[1-4]$/.test(event.code || "") ? event.code.slice(-1) : key;
          if (/^[1-4]$/.test(digit)) {
            choose(item, side, startedAt, Number(digit));
            return true;
          }
          if (key === "Enter") {
            choose(item, side, startedAt);
            return true;
          }
          arm(null);
          if (key === "Escape") return true;
          // Any other key cancels the pending side and then does its own job.
        }
        if ((key === "a" || key === "b") && event.shiftKey) {
          arm(key.toUpperCase());
          return true;
        }
        if (key === "a" || key === "1") choose(item, "A", startedAt);
        else if (key === "b" || key === "2") choose(item, "B", startedAt);
        else if (key === "t") choose(item, "tie", startedAt);
        else if (key === "x") choose(item, "both_bad", startedAt);
        else if (key === "Enter") {
          if (item.answer.choice) ctx.submit(item, startedAt);
          else ctx.toast("Choose first: A, B, tie or both bad.", "info");
        } else return false;
        return true;
      },

      click(target, item, startedAt) {
        if (target.dataset.choice) choose(item, target.dataset.choice, startedAt);
        else if (target.dataset.strength) setStrength(item, Number(target.dataset.strength));
        else return false;
        return true;
      },

      answer(item) {
        const choice = item.answer.choice;
        return { choice: choice, strength: choice === "A" || choice === "B" ? item.answer.strength : null };
      },

      validate(item) {
        return item.answer.choice ? {} : { choice: ["choose A, B, tie or both bad"] };
      },

      describe(item) {
        const { choice, strength } = this.answer(item);
        if (choice === "tie") return "Tie";
        if (choice === "both_bad") return "Both bad";
        return choice + " better" + (strength ? " · " + STRENGTH_NAMES[strength] : "");
      },

      diffBase: () => "A",
      strengthBar: strengthBar,
    };
  };
})();
