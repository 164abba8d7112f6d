/* Shared by every page: the API client (session auth + CSRF) and toasts.
 * Exposed as window.Studio; page scripts load after this file. */
(function () {
  "use strict";

  function cookie(name) {
    const prefix = name + "=";
    for (const part of document.cookie.split(";")) {
      const item = part.trim();
      if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
    }
    return "";
  }

  /** An API call that did not succeed. `detail` is always a sentence fit for the user. */
  class ApiError extends Error {
    constructor(status, body) {
      const detail = (body && body.detail) || (status ? "The server answered " + status + "." : "Network error: the server could not be reached.");
      super(detail);
      this.status = status; // 0 when the request never got an answer
      this.code = (body && body.code) || (status ? "error" : "network");
      this.detail = detail;
      this.fields = (body && body.fields) || {};
    }
  }

  /**
   * fetch() a JSON endpoint. Resolves with {status, data}; rejects with ApiError.
   * Every error body of the API is {"detail", "code", "fields"}.
   */
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRFToken"] = cookie("csrftoken");
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (networkError) {
      throw new ApiError(0, null);
    }
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("application/json")) {
      try { data = await response.json(); } catch (parseError) { data = null; }
    }
    if (!response.ok) {
      if (response.status === 401 || response.status === 403) {
        // A session that ran out reads as 401/403 on the API; say so instead of a bare status.
        if (data && data.code === "not_authenticated") {
          data.detail = "Your session has ended. Reload the page to sign in again.";
        }
      }
      throw new ApiError(response.status, data);
    }
    return { status: response.status, data: data };
  }

  const toastRegion = () => document.getElementById("toasts");

  /** Show a short message; kind is "error" | "info" | "success". Same text is not stacked twice. */
  function toast(message, kind, ms) {
    const region = toastRegion();
    if (!region) return;
    kind = kind || "error";
    for (const existing of region.children) {
      if (existing.dataset.message === message) existing.remove();
    }
    const node = document.createElement("div");
    node.className = "toast toast--" + kind;
    node.dataset.message = message;
    node.setAttribute("role", kind === "error" ? "alert" : "status");
    node.textContent = message;
    region.appendChild(node);
    const close = () => {
      node.classList.add("is-leaving");
      setTimeout(() => node.remove(), 200);
    };
    node.addEventListener("click", close);
    setTimeout(close, ms || (kind === "error" ? 6000 : 3000));
  }

  function formatNumber(value, digits) {
    if (value === null || value === undefined || value === "" || Number.isNaN(Number(value))) return "—";
    return Number(value).toFixed(digits === undefined ? 3 : digits);
  }

  /** Local date and time; `short` leaves out the year. */
  function formatDate(iso, short) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    if (!short) options.year = "numeric";
    return date.toLocaleString(undefined, options);
  }

  /** Builds an element: el("td", {className: "num", dataset: {...}}, "text" | Node | [...]). Text is never parsed as HTML. */
  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null) continue;
        if (key === "dataset") Object.assign(node.dataset, value);
        else if (key === "attrs") for (const [name, attr] of Object.entries(value)) node.setAttribute(name, attr);
        else node[key] = value;
      }
    }
    for (const child of [].concat(children === undefined ? [] : children)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  window.Studio = { api: api, ApiError: ApiError, toast: toast, cookie: cookie, el: el, formatNumber: formatNumber, formatDate: formatDate };
})();
