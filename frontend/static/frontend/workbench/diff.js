/* Word-level diff of two response texts, for spotting what changed between near-identical
 * responses. Runs on the raw `text` (not the rendered HTML) and builds its DOM with
 * createElement/textContent only, so response text is never parsed as markup.
 *
 * Exposed as Workbench.diff: tokenize(text), compare(a, b) -> {ops, similarity, truncated},
 * renderSide(ops, side) and renderInline(ops) -> DocumentFragment.
 */
(function () {
  "use strict";

  const Workbench = (window.Workbench = window.Workbench || {});

  // Above this many DP cells (words of A x words of B, after trimming the common start and
  // end) the diff is not worth the memory: 4M cells of Uint16 is 8 MB and ~20 ms.
  const MAX_CELLS = 4000000;
  // Words, single punctuation marks, and the whitespace that follows them. Punctuation is
  // its own token so "list." and "list" differ by the full stop, not by the whole word.
  const TOKEN = /([\p{L}\p{N}_]+|[^\s\p{L}\p{N}_])(\s*)/gu;

  /** Text -> [{word, space}], plus any leading whitespace; `space` is kept for rendering only. */
  function tokenize(text) {
    const source = String(text || "");
    const lead = /^\s*/.exec(source)[0];
    const tokens = [];
    TOKEN.lastIndex = lead.length;
    let match;
    while ((match = TOKEN.exec(source)) !== null) tokens.push({ word: match[1], space: match[2] });
    return { lead: lead, tokens: tokens };
  }

  /**
   * Longest common subsequence over words. Returns ops in order:
   * {op: "equal", a, b} | {op: "del", a} (only in `a`) | {op: "ins", b} (only in `b`).
   */
  function diffTokens(a, b) {
    let start = 0;
    while (start < a.length && start < b.length && a[start].word === b[start].word) start++;
    let endA = a.length;
    let endB = b.length;
    while (endA > start && endB > start && a[endA - 1].word === b[endB - 1].word) {
      endA--;
      endB--;
    }
    const ops = [];
    for (let i = 0; i < start; i++) ops.push({ op: "equal", a: a[i], b: b[i] });

    const n = endA - start;
    const m = endB - start;
    let truncated = false;
    if ((n + 1) * (m + 1) > MAX_CELLS) {
      // Too long to align word by word: show the whole middle as replaced.
      truncated = true;
      for (let i = start; i < endA; i++) ops.push({ op: "del", a: a[i] });
      for (let j = start; j < endB; j++) ops.push({ op: "ins", b: b[j] });
    } else {
      // table[i * (m + 1) + j] = LCS length of a[start+i..endA) and b[start+j..endB).
      const width = m + 1;
      const table = new Uint16Array((n + 1) * width);
      for (let i = n - 1; i >= 0; i--) {
        const word = a[start + i].word;
        for (let j = m - 1; j >= 0; j--) {
          table[i * width + j] =
            word === b[start + j].word
              ? table[(i + 1) * width + j + 1] + 1
              : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
        }
      }
      let i = 0;
      let j = 0;
      while (i < n || j < m) {
        if (i < n && j < m && a[start + i].word === b[start + j].word) {
          ops.push({ op: "equal", a: a[start + i], b: b[start + j] });
          i++;
          j++;
        } else if (j >= m || (i < n && table[(i + 1) * width + j] >= table[i * width + j + 1])) {
          ops.push({ op: "del", a: a[start + i] });
          i++;
        } else {
          ops.push({ op: "ins", b: b[start + j] });
          j++;
        }
      }
    }
    for (let i = endA, j = endB; i < a.length; i++, j++) ops.push({ op: "equal", a: a[i], b: b[j] });
    return { ops: ops, truncated: truncated };
  }

  /** Compare two texts; `similarity` is the share of words in common (0..1). */
  function compare(textA, textB) {
    const a = tokenize(textA);
    const b = tokenize(textB);
    const result = diffTokens(a.tokens, b.tokens);
    const equal = result.ops.filter((op) => op.op === "equal").length;
    const total = a.tokens.length + b.tokens.length;
    return {
      ops: result.ops,
      leadA: a.lead,
      leadB: b.lead,
      truncated: result.truncated,
      similarity: total ? (2 * equal) / total : 1,
    };
  }

  /**
   * Appends runs of [{token, mark}] to a fragment: consecutive tokens with the same mark share
   * one <ins>/<del>, and a run's trailing whitespace stays outside it so highlights hug words.
   */
  function renderRuns(lead, items) {
    const fragment = document.createDocumentFragment();
    if (lead) fragment.appendChild(document.createTextNode(lead));
    let index = 0;
    while (index < items.length) {
      const mark = items[index].mark;
      let end = index;
      while (end + 1 < items.length && items[end + 1].mark === mark) end++;
      let text = "";
      for (let k = index; k <= end; k++) text += items[k].token.word + (k < end ? items[k].token.space : "");
      const trailing = items[end].token.space;
      if (mark) {
        const node = document.createElement(mark);
        node.className = "diff-" + mark;
        node.textContent = text;
        fragment.appendChild(node);
        if (trailing) fragment.appendChild(document.createTextNode(trailing));
      } else {
        fragment.appendChild(document.createTextNode(text + trailing));
      }
      index = end + 1;
    }
    return fragment;
  }

  /** One side of a side-by-side view: "a" marks what B lacks (del), "b" what B added (ins). */
  function renderSide(result, side) {
    const items = [];
    for (const op of result.ops) {
      if (side === "a" && op.op !== "ins") items.push({ token: op.a, mark: op.op === "del" ? "del" : "" });
      if (side === "b" && op.op !== "del") items.push({ token: op.b, mark: op.op === "ins" ? "ins" : "" });
    }
    return renderRuns(side === "a" ? result.leadA : result.leadB, items);
  }

  /** B's text with A's missing words struck through in place (for comparing against a base). */
  function renderInline(result) {
    const items = result.ops.map((op) =>
      op.op === "equal" ? { token: op.b, mark: "" } : op.op === "del" ? { token: op.a, mark: "del" } : { token: op.b, mark: "ins" }
    );
    return renderRuns(result.leadB, items);
  }

  Workbench.diff = { tokenize: tokenize, compare: compare, renderSide: renderSide, renderInline: renderInline };
})();
