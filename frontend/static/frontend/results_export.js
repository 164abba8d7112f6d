/* Results page: the Export dialog. Builds an export URL from the form (GET export/<kind>/),
 * shows it, and downloads the file.
 *
 * Two steps. The dialog first asks the same URL with check=1: the server runs every check the
 * export makes before its first row (filters, format, version) and answers the file's name, or
 * the refusal, which the dialog shows next to the fields it names (instead of saving a JSON
 * error body as the "export"). Then the browser itself fetches the URL as a download, so the
 * file streams to disk whatever its size: nothing of it passes through this page's memory.
 */
(function () {
  "use strict";

  const root = document.getElementById("results");
  const dialog = root && root.querySelector("#export-dialog");
  if (!dialog) return;

  const form = dialog.querySelector('[data-region="export-form"]');
  const openButton = root.querySelector('[data-action="export"]');
  const region = (name) => dialog.querySelector('[data-region="' + name + '"]');
  const ui = {
    url: region("export-url"),
    curl: region("export-curl"),
    error: region("export-error"),
    status: region("export-status"),
    timeZone: region("export-time-zone"),
    format: form.elements.format,
    version: form.elements.version,
    download: dialog.querySelector('[data-testid="export-download"]'),
    copy: dialog.querySelector('[data-action="export-copy"]'),
  };

  const FORMATS = {
    pairs: [["jsonl", "JSON Lines"], ["parquet", "Parquet"]],
    labels: [["jsonl", "JSON Lines"], ["csv", "CSV"]],
    scores: [["jsonl", "JSON Lines"], ["csv", "CSV"]],
    leaderboard: [["jsonl", "JSON Lines"], ["csv", "CSV"]],
  };
  // The query parameters each kind takes besides format (the API's contract).
  const PARAMETERS = {
    pairs: ["style", "ties", "since", "until", "annotators", "agreement_below"],
    labels: ["since", "until", "annotators", "agreement_below"],
    scores: ["version"],
    leaderboard: [],
  };
  // Field names in the server's errors, as the dialog labels them.
  const FIELD_LABELS = {
    format: "Format", style: "Style", ties: "Include ties", version: "Model version", since: "From", until: "To",
    annotators: "Annotators", agreement_below: "Agreement below",
  };

  const endpoint = (kind) => root.dataset.apiRoot + "projects/" + root.dataset.projectId + "/export/" + kind + "/";
  const kind = () => form.elements.kind.value;

  /** "2026-03-01T09:30" (datetime-local, the browser's zone) -> "2026-03-01T09:30:00+01:00". */
  function isoWithOffset(local) {
    const date = new Date(local);
    if (Number.isNaN(date.getTime())) return "";
    const pad = (n) => String(Math.abs(n)).padStart(2, "0");
    const offset = -date.getTimezoneOffset(); // minutes east of UTC
    const sign = offset >= 0 ? "+" : "-";
    return (
      date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()) +
      sign + pad(Math.trunc(offset / 60)) + ":" + pad(offset % 60)
    );
  }

  function paramValue(name) {
    if (name === "annotators") {
      return Array.from(form.querySelectorAll('input[name="annotators"]:checked'), (box) => box.value).join(",");
    }
    const value = (form.elements[name].value || "").trim();
    if (name === "since" || name === "until") return value ? isoWithOffset(value) : "";
    return value;
  }

  /** The export's URL (absolute, so it can be copied) for what the form says now. */
  function exportUrl() {
    const selected = kind();
    const params = new URLSearchParams({ format: ui.format.value });
    for (const name of PARAMETERS[selected]) {
      const value = paramValue(name);
      if (value !== "") params.set(name, value);
    }
    return new URL(endpoint(selected) + "?" + params.toString(), window.location.href).href;
  }

  /** Shows the controls the chosen kind takes and offers its formats (keeping the format if it still applies). */
  function syncKind() {
    const selected = kind();
    const previous = ui.format.value;
    ui.format.replaceChildren(
      ...FORMATS[selected].map(([value, label]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = label;
        return option;
      })
    );
    if (FORMATS[selected].some(([value]) => value === previous)) ui.format.value = previous;
    for (const node of form.querySelectorAll("[data-kinds]")) {
      const applies = node.dataset.kinds.split(" ").includes(selected);
      node.hidden = !applies;
      // Hidden controls are not part of this export: keep them out of the tab order and validation.
      for (const control of node.querySelectorAll("input, select")) control.disabled = !applies;
    }
  }

  function showUrl() {
    const href = exportUrl();
    ui.url.textContent = href;
    ui.curl.textContent = "curl -fOJ -H 'Authorization: Token <your token>' '" + href + "'";
  }

  function clearMessages() {
    ui.error.hidden = true;
    ui.error.replaceChildren();
    ui.status.textContent = "";
    for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  }

  /** The server's sentence, then one line per field it named; the named controls are marked invalid. */
  function showError(detail, fields) {
    const lines = [];
    for (const [name, messages] of Object.entries(fields || {})) {
      for (const message of [].concat(messages)) lines.push((FIELD_LABELS[name] || name) + ": " + message);
      const control = form.elements[name];
      if (control && control.setAttribute) control.setAttribute("aria-invalid", "true");
    }
    const nodes = [document.createElement("div")];
    nodes[0].textContent = detail;
    if (lines.length) {
      const list = document.createElement("ul");
      for (const line of lines) {
        const item = document.createElement("li");
        item.textContent = line;
        list.appendChild(item);
      }
      nodes.push(list);
    }
    ui.error.replaceChildren(...nodes);
    ui.error.hidden = false;
  }

  /** What the server cannot see: text in a number field reads as empty there, which would silently mean "no filter". */
  function localErrors() {
    const field = form.elements.agreement_below;
    return !field.disabled && field.validity.badInput ? { agreement_below: ["Not a number."] } : {};
  }

  let inFlight = null; // AbortController of the running download

  async function download() {
    clearMessages();
    const invalid = localErrors();
    if (Object.keys(invalid).length) {
      showError("Check the filters.", invalid);
      return;
    }
    const href = exportUrl();
    inFlight = new AbortController();
    ui.download.disabled = true;
    ui.status.textContent = "Checking the filters…";
    try {
      const check = new URL(href);
      check.searchParams.set("check", "1");
      const response = await fetch(check.href, { credentials: "same-origin", signal: inFlight.signal, headers: { Accept: "application/json" } });
      let body = null;
      if ((response.headers.get("Content-Type") || "").includes("application/json")) {
        try { body = await response.json(); } catch (parseError) { body = null; }
      }
      if (!response.ok) {
        ui.status.textContent = "";
        showError((body && body.detail) || "The server answered " + response.status + ".", body && body.fields);
        return;
      }
      const name = (body && body.filename) || kind() + "." + ui.format.value;
      // The browser's own download of the URL (session cookie, Content-Disposition: attachment):
      // the page stays, and the file goes to disk as it arrives.
      const link = document.createElement("a");
      link.href = href;
      link.download = name;
      link.hidden = true;
      document.body.appendChild(link);
      link.click();
      link.remove();
      ui.status.textContent = "Downloading " + name + ": your browser saves it as it arrives.";
    } catch (error) {
      if (error.name === "AbortError") return;
      ui.status.textContent = "";
      showError("Network error: the server could not be reached.", {});
    } finally {
      inFlight = null;
      ui.download.disabled = false;
    }
  }

  function fillVersions(versions) {
    const selected = ui.version.value;
    const options = [["", "The champion"]].concat(
      versions.map((version) => [String(version.version), "v" + version.version + " · " + version.status])
    );
    ui.version.replaceChildren(
      ...options.map(([value, label]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = label;
        return option;
      })
    );
    if (options.some(([value]) => value === selected)) ui.version.value = selected;
    showUrl();
  }

  async function copyUrl() {
    const href = exportUrl();
    try {
      await navigator.clipboard.writeText(href);
      ui.status.textContent = "URL copied.";
    } catch (error) {
      // No clipboard (an insecure origin, or permission refused): select the URL for a manual copy.
      window.getSelection().selectAllChildren(ui.url);
      ui.status.textContent = "Press Ctrl+C to copy the selected URL.";
    }
  }

  function open() {
    clearMessages();
    syncKind();
    showUrl();
    dialog.showModal();
  }

  openButton.addEventListener("click", open);
  dialog.addEventListener("close", () => {
    if (inFlight) inFlight.abort();
    openButton.focus();
  });
  for (const button of dialog.querySelectorAll('[data-action="export-close"]')) button.addEventListener("click", () => dialog.close());
  ui.copy.addEventListener("click", copyUrl);
  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") {
      syncKind();
      clearMessages();
    }
    showUrl();
  });
  form.addEventListener("input", showUrl);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!inFlight) download();
  });
  root.addEventListener("results:versions", (event) => fillVersions(event.detail.versions));

  ui.timeZone.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  syncKind();
  showUrl();
})();
