/* Import page: the project's import history (every upload and command-line import, newest
 * first), reloaded whenever the upload form (import.js) finishes, refused or not. */
(function () {
  "use strict";

  const { api, el, formatDate, toast } = window.Studio;
  const root = document.getElementById("project-import");
  if (!root) return;

  const url = root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/imports/";
  const rows = root.querySelector('[data-region="history"]');
  const more = root.querySelector('[data-region="history-more"]');
  let nextPage = null;

  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function errorsCell(record) {
    if (!record.error_count) return el("td", { className: "muted" }, "—");
    const list = el("ul", { className: "import-history__errors small" }, record.errors.map((e) =>
      el("li", null, (e.line === null ? "" : "Line " + e.line + ", ") + e.field + ": " + e.message)));
    const hidden = record.error_count - record.errors.length;
    if (hidden > 0) list.appendChild(el("li", null, "… and " + hidden + " more"));
    return el("td", null, el("details", null, [
      el("summary", null, record.error_count + " error" + (record.error_count === 1 ? "" : "s")),
      list,
    ]));
  }

  function row(record) {
    const ok = record.status === "succeeded";
    return el("tr", { dataset: { testid: "import-row", status: record.status } }, [
      el("td", { className: "nowrap" }, formatDate(record.created_at)),
      el("td", { className: "mono small", title: record.source }, record.source),
      el("td", null, record.uploaded_by === null ? el("span", { className: "muted" }, "command line") : record.uploaded_by),
      el("td", null, el("span", { className: "badge " + (ok ? "badge--success" : "badge--danger") }, record.status)),
      el("td", { className: "num nowrap" }, size(record.size_bytes)),
      el("td", { className: "num" }, record.prompts),
      el("td", { className: "num" }, record.responses),
      el("td", { className: "num" }, record.items),
      errorsCell(record),
    ]);
  }

  async function load(append) {
    try {
      const { data } = await api("GET", append && nextPage ? nextPage : url);
      const built = data.results.map(row);
      if (append) rows.append(...built);
      else if (built.length) rows.replaceChildren(...built);
      else rows.replaceChildren(el("tr", null, el("td", { colSpan: 9, className: "muted" }, "Nothing imported yet.")));
      nextPage = data.next;
      more.hidden = !nextPage;
    } catch (error) {
      toast(error.detail);
    }
  }

  more.addEventListener("click", () => load(true));
  root.addEventListener("import:finished", () => load(false));
  load(false);
})();
