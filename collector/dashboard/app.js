// The operator dashboard: a small single-page app over the collector's REST API.
// No framework and no build step: the collector embeds this file as it is.
// Chart.js (vendored, pinned by package-lock.json) is loaded only when the
// analytics page is first opened, so the first paint needs just HTML and CSS.
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // ---- API -----------------------------------------------------------------

  /** An API failure, carrying the server's JSON error body when there was one. */
  class ApiError extends Error {
    constructor(status, body, fallback) {
      super(describeError(body, fallback));
      this.status = status;
      this.body = body;
    }
  }

  /** Turns the server's `{"error": ..., "detail": ..., "row": ...}` into one message. */
  function describeError(body, fallback) {
    if (!body || typeof body !== "object") return fallback;
    const parts = [];
    if (body.error) parts.push(String(body.error));
    const detail = body.detail ?? body.message ?? body.details;
    if (detail !== undefined && detail !== null && detail !== body.error) {
      parts.push(typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    if (body.row !== undefined && !parts.some((p) => p.includes(`row ${body.row}`))) {
      parts.push(`(row ${body.row})`);
    }
    return parts.length ? parts.join(": ") : fallback;
  }

  async function parseBody(res) {
    const text = await res.text();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      return { error: text.slice(0, 300) };
    }
  }

  // ---- Session ---------------------------------------------------------------

  /** The logged-in operator: { user, role, csrf_token }, or null. */
  let session = null;
  const ROLE_RANK = { viewer: 0, analyst: 1, admin: 2 };
  const can = (role) => session !== null && ROLE_RANK[session.role] >= ROLE_RANK[role];

  /** Every state-changing request made with the session cookie carries its CSRF token. */
  function withCsrf(options) {
    const method = (options.method || "GET").toUpperCase();
    if (method === "GET" || !session) return options;
    return { ...options, headers: { ...(options.headers || {}), "X-CSRF-Token": session.csrf_token } };
  }

  async function api(path, options = {}) {
    let res;
    try {
      res = await fetch(path, withCsrf({ headers: { Accept: "application/json" }, credentials: "same-origin", ...options }));
    } catch (e) {
      throw new ApiError(0, null, `The collector cannot be reached (${e.message}).`);
    }
    const body = await parseBody(res);
    if (res.status === 401 && session && path !== "/api/login") {
      // The session ended (idle, expired, logged out elsewhere): log in again.
      showLogin("Your session has ended; log in again.");
    }
    if (!res.ok) throw new ApiError(res.status, body, `The collector answered HTTP ${res.status}.`);
    return body;
  }

  /** Shows what the role may do and hides the rest (the server refuses it anyway). */
  function applyRole() {
    for (const node of $$("[data-min-role]")) node.hidden = !can(node.dataset.minRole);
    $("#whoami-user").textContent = session ? session.user : "";
    $("#whoami-role").textContent = session ? session.role : "";
    $("#whoami").hidden = !session;
    $("#nav").hidden = !session;
  }

  function showLogin(message) {
    session = null;
    // Nothing of the last operator stays on screen.
    if ($("#detail").open) $("#detail").close();
    applyRole();
    for (const section of $$(".page")) section.hidden = section.id !== "page-login";
    document.title = "Log in — bfp dashboard";
    showError($("#login-error"), message ? new Error(message) : null);
    $("#login-user").focus();
  }

  function initLogin() {
    $("#login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      showError($("#login-error"), null);
      try {
        session = await api("/api/login", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ user: $("#login-user").value.trim(), password: $("#login-password").value }),
        });
      } catch (e) {
        showError($("#login-error"), e);
        return;
      }
      $("#login-password").value = "";
      applyRole();
      route();
    });
    $("#logout").addEventListener("click", async () => {
      try {
        await api("/api/logout", { method: "POST" });
      } catch {
        // Whatever the answer, this page forgets the session.
      }
      showLogin(null);
    });
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return s ? `?${s}` : "";
  }

  // ---- Small view helpers --------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function showError(box, err) {
    box.textContent = err ? (err.message || String(err)) : "";
    box.hidden = !err;
  }

  const pct = (x) => `${(Number(x) * 100).toFixed(1)}%`;
  const fmtInt = (n) => Number(n ?? 0).toLocaleString("en-US");

  function badge(prediction) {
    return el("span", { class: `badge ${prediction}`, text: prediction });
  }

  /** Reasons may come as strings or as objects (feature, text, contribution). */
  function reasonText(r) {
    if (typeof r === "string") return r;
    if (r && typeof r === "object") {
      const text = r.text ?? r.reason ?? r.message ?? r.description;
      if (text) return String(text);
      if (r.feature !== undefined) {
        const w = r.contribution ?? r.weight;
        return w !== undefined ? `${r.feature} (${Number(w).toFixed(3)})` : String(r.feature);
      }
    }
    return JSON.stringify(r);
  }

  function fillReasons(list, reasons) {
    list.replaceChildren();
    const items = Array.isArray(reasons) ? reasons : [];
    if (!items.length) list.append(el("li", { class: "muted", text: "No single feature stood out." }));
    for (const r of items) list.append(el("li", { text: reasonText(r) }));
  }

  // ---- Router --------------------------------------------------------------

  const pages = {
    analytics: { init: initAnalytics, show: loadAnalytics },
    results: { init: initResults, show: loadResults },
    devices: { show: loadDevices },
    alerts: { init: initAlerts, show: loadAlerts },
    audit: { show: loadAudit, role: "admin" },
    scan: { init: initScan, role: "analyst" },
    batch: { init: initBatch, role: "analyst" },
  };
  const initialised = new Set();

  function route() {
    if (!session) return;
    const hash = location.hash;
    // In-page anchors such as the skip link are not routes.
    if (hash && !hash.startsWith("#/")) return;
    const home = can("analyst") ? "scan" : "analytics";
    const name = (hash.slice(2).split("?")[0] || home);
    const page = pages[name] && can(pages[name].role || "viewer") ? name : home;
    for (const section of $$(".page")) section.hidden = section.id !== `page-${page}`;
    for (const a of $$("nav a[data-page]")) {
      if (a.dataset.page === page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = `${$(`#page-${page} h1`).textContent} — bfp dashboard`;
    if (!initialised.has(page)) {
      initialised.add(page);
      pages[page].init?.();
    }
    pages[page].show?.();
  }

  // ---- 1. Single scan ------------------------------------------------------

  // The server's bounds (common/src/fingerprint.rs), mirrored so a mistake is
  // caught before a round trip; the server still checks everything.
  const LIMITS = { duration: 525600, count: 10000000, typing: 1000000 };
  const PROTOCOLS = ["HTTPS", "SSH", "FTP", "TOR"];

  function checkNumber(input, { integer, max, min = 0 }) {
    const raw = input.value.trim();
    if (raw === "") return "Required.";
    const n = Number(raw);
    if (!Number.isFinite(n)) return "Must be a number.";
    if (integer && !Number.isInteger(n)) return "Must be a whole number.";
    if (n < min) return `Must be at least ${min}.`;
    if (max !== undefined && n > max) return `Must be at most ${max}.`;
    return null;
  }

  function commandList() {
    return $("#f-command-list").value.split("\n").map((s) => s.trim()).filter(Boolean);
  }

  /** Validates the scan form; marks each bad field and returns the request body or null. */
  function validateScan() {
    const listed = commandList();
    const checks = [
      ["#f-hour", "#e-hour", (i) => checkNumber(i, { integer: true, max: 23 })],
      ["#f-duration", "#e-duration", (i) => checkNumber(i, { max: LIMITS.duration })],
      ["#f-commands", "#e-commands", (i) => (listed.length ? null : checkNumber(i, { integer: true, max: LIMITS.count }))],
      ["#f-failed", "#e-failed", (i) => checkNumber(i, { integer: true, max: LIMITS.count })],
      ["#f-protocol", "#e-protocol", (i) => (PROTOCOLS.includes(i.value) ? null : "Choose HTTPS, SSH, FTP or TOR.")],
      ["#f-typing", "#e-typing", (i) => checkNumber(i, { max: LIMITS.typing })],
    ];
    let firstBad = null;
    for (const [inputSel, errSel, check] of checks) {
      const input = $(inputSel);
      const problem = check(input);
      $(errSel).textContent = problem || "";
      if (problem) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      if (problem && !firstBad) firstBad = input;
    }
    if (firstBad) {
      firstBad.focus();
      return null;
    }
    return {
      login_time: Number($("#f-hour").value),
      session_duration: Number($("#f-duration").value),
      commands: listed.length ? listed : Number($("#f-commands").value),
      failed_logins: Number($("#f-failed").value),
      protocol: $("#f-protocol").value,
      typing_speed: Number($("#f-typing").value),
    };
  }

  function initScan() {
    const form = $("#scan-form");
    const list = $("#f-command-list");
    // A listed command set fixes the count: keep the number in step with it.
    list.addEventListener("input", () => {
      const n = commandList().length;
      const count = $("#f-commands");
      count.readOnly = n > 0;
      if (n > 0) count.value = String(n);
    });
    form.addEventListener("reset", () => {
      setTimeout(() => {
        $("#f-commands").readOnly = false;
        for (const e of $$(".field-error", form)) e.textContent = "";
        for (const i of $$("[aria-invalid]", form)) i.removeAttribute("aria-invalid");
      });
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = validateScan();
      if (!body) return;
      const button = $("#scan-submit");
      button.disabled = true;
      showError($("#scan-error"), null);
      try {
        const r = await api("/api/predict", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(body),
        });
        const verdict = $("#scan-verdict");
        verdict.textContent = r.prediction;
        verdict.className = `badge ${r.prediction}`;
        $("#scan-confidence").textContent = pct(r.confidence);
        const meta = [];
        if (r.id !== undefined) meta.push(`stored as #${r.id}`);
        if (r.model_version) meta.push(`model ${r.model_version}`);
        $("#scan-meta").textContent = meta.length ? `(${meta.join(", ")})` : "";
        fillReasons($("#scan-reasons"), r.reasons);
        $("#scan-result").hidden = false;
      } catch (e) {
        $("#scan-result").hidden = true;
        showError($("#scan-error"), e);
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- 2. CSV batch --------------------------------------------------------

  const BATCH_PAGE = 50;
  let batchState = null;

  /** Uploads with XMLHttpRequest: fetch() cannot report upload progress. */
  function upload(file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/predict-csv?ids=1");
      xhr.setRequestHeader("Accept", "application/json");
      if (session) xhr.setRequestHeader("X-CSRF-Token", session.csrf_token);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) onProgress(e.loaded, e.total);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch {
          body = { error: xhr.responseText.slice(0, 300) };
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else reject(new ApiError(xhr.status, body, `The collector answered HTTP ${xhr.status}.`));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, null, "The collector cannot be reached.")));
      xhr.addEventListener("abort", () => reject(new ApiError(0, null, "Upload aborted.")));
      const data = new FormData();
      data.append("file", file, file.name);
      xhr.send(data);
    });
  }

  function initBatch() {
    $("#batch-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = $("#f-file");
      const file = input.files && input.files[0];
      if (!file) {
        $("#e-file").textContent = "Choose a CSV file.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      $("#e-file").textContent = "";
      input.removeAttribute("aria-invalid");
      const button = $("#batch-submit");
      button.disabled = true;
      showError($("#batch-error"), null);
      $("#batch-result").hidden = true;
      const wrap = $("#batch-progress-wrap");
      const bar = $("#batch-progress");
      const text = $("#batch-progress-text");
      wrap.hidden = false;
      bar.value = 0;
      text.textContent = "Uploading…";
      try {
        const summary = await upload(file, (loaded, total) => {
          bar.value = Math.round((loaded / total) * 100);
          text.textContent = loaded < total ? `${bar.value}% uploaded` : "Uploaded; scoring…";
        });
        bar.value = 100;
        text.textContent = "Done.";
        $("#batch-total").textContent = fmtInt(summary.total_records);
        $("#batch-normal").textContent = fmtInt(summary.normal_users);
        $("#batch-suspicious").textContent = fmtInt(summary.suspicious_users);
        batchState = { filter: batchFilter(summary), total: summary.total_records, cursors: [0] };
        const link = $("#batch-download");
        link.hidden = !batchState.filter;
        if (batchState.filter) link.href = `/api/export.csv${query(batchState.filter)}`;
        link.setAttribute("download", file.name.replace(/\.csv$/i, "") + "-scored.csv");
        $("#batch-result").hidden = false;
        await loadBatchRows();
      } catch (e) {
        text.textContent = "Failed.";
        showError($("#batch-error"), e);
      } finally {
        button.disabled = false;
      }
    });
  }

  /** Which stored rows an upload produced: one upload is one transaction,
   *  so its rows are the contiguous ids the server reports. */
  function batchFilter(summary) {
    if (Number.isInteger(summary.first_id) && Number.isInteger(summary.last_id)) {
      return { min_id: summary.first_id, max_id: summary.last_id };
    }
    return null;
  }

  async function loadBatchRows() {
    const tbody = $("#batch-rows tbody");
    const pager = $("#batch-pager");
    tbody.replaceChildren();
    pager.replaceChildren();
    if (!batchState.filter) {
      tbody.append(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "This collector does not report which rows an upload stored." })));
      return;
    }
    const page = batchState.cursors.length - 1;
    const r = await api(`/api/results${query({ ...batchState.filter, after_id: batchState.cursors[page], limit: BATCH_PAGE })}`);
    let row = page * BATCH_PAGE;
    for (const res of r.results) {
      row += 1;
      const f = res.features || {};
      tbody.append(
        el("tr", {},
          el("td", { class: "num", text: row }),
          el("td", { class: "num", text: f.login_hour ?? "" }),
          el("td", { class: "num", text: fmtMinutes(f.session_duration_min ?? f.session_duration) }),
          el("td", { class: "num", text: f.commands_count ?? f.commands ?? "" }),
          el("td", { class: "num", text: f.failed_logins ?? "" }),
          el("td", { text: f.protocol ?? "" }),
          el("td", { class: "num", text: f.typing_speed_wpm ?? f.typing_speed ?? "" }),
          el("td", {}, badge(res.prediction)),
          el("td", { class: "num", text: pct(res.confidence) }),
        ),
      );
    }
    const last = r.results.length ? r.results[r.results.length - 1].id : null;
    const shownTo = page * BATCH_PAGE + r.results.length;
    pager.append(el("span", { class: "muted", text: `Rows ${fmtInt(page * BATCH_PAGE + (r.results.length ? 1 : 0))}–${fmtInt(shownTo)} of ${fmtInt(r.count)}` }));
    if (page > 0) {
      pager.append(el("button", { type: "button", text: "Previous rows", onclick: () => { batchState.cursors.pop(); loadBatchRows(); } }));
    }
    if (last !== null && shownTo < r.count) {
      pager.append(el("button", { type: "button", text: "Next rows", onclick: () => { batchState.cursors.push(last); loadBatchRows(); } }));
    }
  }

  // ---- 3. Analytics --------------------------------------------------------

  let chartLib = null;
  const charts = {};
  let bucket = "hour";
  const COLORS = { normal: "#2e9d5f", suspicious: "#d0453b" };

  /** Loads the vendored Chart.js once, on first use. */
  function loadChartLib() {
    if (chartLib) return chartLib;
    chartLib = new Promise((resolve, reject) => {
      const s = el("script", { src: `/assets/vendor/chart.umd.min.js?v=${assetVersion()}` });
      s.addEventListener("load", () => resolve(window.Chart));
      s.addEventListener("error", () => {
        chartLib = null;
        reject(new Error("The chart library did not load."));
      });
      document.head.append(s);
    });
    return chartLib;
  }

  function assetVersion() {
    const own = $$("script[src]").map((s) => s.getAttribute("src")).find((s) => s.startsWith("/assets/app.js"));
    return own ? new URL(own, location.href).searchParams.get("v") || "" : "";
  }

  function initAnalytics() {
    for (const b of $$(".segmented button[data-bucket]")) {
      b.addEventListener("click", () => {
        bucket = b.dataset.bucket;
        for (const o of $$(".segmented button[data-bucket]")) o.setAttribute("aria-pressed", String(o === b));
        loadAnalytics();
      });
    }
  }

  async function loadAnalytics() {
    const errBox = $("#analytics-error");
    showError(errBox, null);
    try {
      const [a, insights, Chart] = await Promise.all([
        api("/api/analytics"),
        api(`/api/insights${query({ bucket })}`),
        loadChartLib(),
      ]);
      $("#a-total").textContent = fmtInt(a.total_predictions);
      $("#a-normal").textContent = fmtInt(a.normal_users);
      $("#a-suspicious").textContent = fmtInt(a.suspicious_users);
      $("#a-normal-pct").textContent = `${Number(a.normal_percent).toFixed(1)}%`;
      $("#a-suspicious-pct").textContent = `${Number(a.suspicious_percent).toFixed(1)}%`;
      drawStacked(Chart, "time", insights.over_time, "bucket", bucket === "hour" ? "Hour (UTC)" : "Day (UTC)");
      drawStacked(Chart, "protocol", insights.by_protocol, "key", "Protocol");
      drawStacked(Chart, "source", insights.by_source, "key", "Source");
      drawStacked(Chart, "device", insights.by_device, "key", "Device");
      drawTop(Chart, insights.top_suspicious_sources);
      const note = [];
      if (insights.window) note.push(`Charts cover ${insights.window}.`);
      $("#analytics-note").textContent = note.join(" ");
    } catch (e) {
      showError(errBox, e);
    }
  }

  function dataTable(container, head, rows) {
    container.replaceChildren(
      el("table", {},
        el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { scope: "col", class: i ? "num" : null, text: h })))),
        el("tbody", {}, rows.length
          ? rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: i ? "num" : null, text: c }))))
          : el("tr", {}, el("td", { colspan: head.length, class: "muted", text: "No data yet." }))),
      ),
    );
  }

  /** Draws a chart, or says there is nothing to draw (an empty plot reads as broken). */
  function replaceChart(Chart, name, config, empty) {
    charts[name]?.destroy();
    delete charts[name];
    const canvas = $(`#chart-${name}`);
    const box = canvas.parentElement;
    let note = box.querySelector(".chart-empty");
    if (!note) {
      note = el("p", { class: "chart-empty", text: "No data yet." });
      box.append(note);
    }
    note.hidden = !empty;
    canvas.hidden = empty;
    if (!empty) charts[name] = new Chart(canvas, config);
  }

  function drawStacked(Chart, name, items = [], keyField, axisTitle) {
    const labels = items.map((i) => String(i[keyField] ?? "—"));
    replaceChart(Chart, name, {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: "Normal", data: items.map((i) => i.normal), backgroundColor: COLORS.normal },
          { label: "Suspicious", data: items.map((i) => i.suspicious), backgroundColor: COLORS.suspicious },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true, title: { display: true, text: axisTitle } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    }, !items.some((i) => i.normal + i.suspicious > 0));
    dataTable($(`#table-${name}`), [axisTitle, "Normal", "Suspicious"], items.map((i) => [String(i[keyField] ?? "—"), fmtInt(i.normal), fmtInt(i.suspicious)]));
  }

  function drawTop(Chart, items = []) {
    replaceChart(Chart, "ips", {
      type: "bar",
      data: {
        labels: items.map((i) => i.key),
        datasets: [{ label: "Suspicious", data: items.map((i) => i.suspicious), backgroundColor: COLORS.suspicious }],
      },
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    }, items.length === 0);
    dataTable($("#table-ips"), ["Source address", "Suspicious"], items.map((i) => [i.key, fmtInt(i.suspicious)]));
  }

  // ---- 4. Results ----------------------------------------------------------

  // Newest event first. Keyset paging (before_id) stays fast however deep
  // the page; the stack of cursors makes "Previous" exact without offsets.
  let resultsState = { filters: {}, cursors: [null], last: null, lastCount: 0 };

  /** `datetime-local` gives "YYYY-MM-DDTHH:MM[:SS]"; the API speaks "YYYY-MM-DD HH:MM:SS". */
  function apiTime(v) {
    if (!v) return "";
    const [d, t] = v.split("T");
    const hms = t.length === 5 ? `${t}:00` : t;
    return `${d} ${hms}`;
  }

  function readFilters() {
    const f = $("#results-filters");
    return {
      prediction: f.prediction.value,
      user: f.user.value.trim(),
      source_ip: f.source_ip.value.trim(),
      kind: f.kind.value,
      reason: f.reason.value.trim(),
      min_confidence: f.min_confidence.value,
      time: f.time.value === "ingest" ? "ingest" : "",
      source: f.source.value,
      device: f.device.value.trim(),
      from: apiTime(f.from.value),
      to: apiTime(f.to.value),
      labelled: f.labelled ? f.labelled.value : "",
      limit: f.limit.value,
    };
  }

  function initResults() {
    const form = $("#results-filters");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      resultsState = { filters: readFilters(), cursors: [null], last: null };
      loadResults();
    });
    form.addEventListener("reset", () => {
      setTimeout(() => {
        resultsState = { filters: readFilters(), cursors: [null], last: null };
        loadResults();
      });
    });
    $("#results-first").addEventListener("click", () => {
      resultsState.cursors = [null];
      loadResults();
    });
    $("#results-prev").addEventListener("click", () => {
      if (resultsState.cursors.length > 1) resultsState.cursors.pop();
      loadResults();
    });
    $("#results-next").addEventListener("click", () => {
      if (resultsState.last !== null) resultsState.cursors.push(resultsState.last);
      loadResults();
    });
    resultsState.filters = readFilters();
  }

  // Only the newest request's answer is shown: a reset, a filter and a
  // related-record link can each start a load, and answers may cross.
  let resultsSeq = 0;

  async function loadResults() {
    const errBox = $("#results-error");
    const seq = ++resultsSeq;
    showError(errBox, null);
    const { filters, cursors } = resultsState;
    const limit = Number(filters.limit || 25);
    const page = cursors.length - 1;
    try {
      const r = await api(`/api/results${query({ ...filters, order: "newest", before_id: cursors[page] })}`);
      if (seq !== resultsSeq) return;
      const tbody = $("#results-table tbody");
      tbody.replaceChildren();
      for (const res of r.results) {
        const open = () => openDetail(res);
        tbody.append(
          el("tr", { class: "clickable", "data-id": res.id, onclick: open },
            el("td", { class: "num", text: res.id }),
            el("td", { class: "time", text: res.event_at ?? res.created_at }),
            el("td", { class: "user", text: res.user ?? "" }),
            el("td", { class: "addr", text: res.source_ip ?? "" }),
            el("td", { text: res.device ?? "" }),
            el("td", { class: "kind", text: kindText(res) }),
            el("td", { class: "reason", text: res.top_reason ?? (res.reasons || [])[0] ?? "" }),
            el("td", {}, badge(res.prediction)),
            el("td", { class: "num", text: pct(res.confidence) }),
            el("td", {}, el("button", {
              type: "button", class: "details", text: "Details", "aria-label": `Details of prediction ${res.id}`,
              onclick: (e) => { e.stopPropagation(); open(); },
            })),
          ),
        );
      }
      if (!r.results.length) {
        tbody.append(el("tr", {}, el("td", { colspan: 10, class: "muted", text: "No stored predictions match." })));
      }
      resultsState.last = r.results.length ? r.results[r.results.length - 1].id : null;
      const { limit: _limit, ...exportFilters } = filters;
      $("#results-download").href = `/api/export.csv${query(exportFilters)}`;
      const from = page * limit + (r.results.length ? 1 : 0);
      const to = page * limit + r.results.length;
      const pages = Math.max(1, Math.ceil(r.count / limit));
      $("#results-page").textContent = `Page ${page + 1} of ${fmtInt(pages)}`;
      $("#results-status").textContent = `Showing ${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(r.count)} predictions.`;
      $("#results-first").disabled = page === 0;
      $("#results-prev").disabled = page === 0;
      $("#results-next").disabled = to >= r.count || resultsState.last === null;
    } catch (e) {
      if (seq === resultsSeq) showError(errBox, e);
    }
  }

  /** What a record is: the agent's kind, else the channel it came through. */
  function kindText(res) {
    if (res.kind) return { session: "session", source: "source address", device: "whole device" }[res.kind] ?? res.kind;
    return { single: "single scan", csv: "CSV row", agent: "agent" }[res.source] ?? res.source ?? "";
  }

  /** Minutes as people read them: "36 min 10 s", "2 h 5 min", "40 s". */
  function fmtMinutes(v) {
    if (v === undefined || v === null || v === "") return "";
    const secs = Math.round(Number(v) * 60);
    if (!Number.isFinite(secs)) return "";
    if (secs < 60) return `${secs} s`;
    if (secs < 3600) return secs % 60 ? `${Math.floor(secs / 60)} min ${secs % 60} s` : `${secs / 60} min`;
    const mins = Math.round(secs / 60);
    return mins % 60 ? `${Math.floor(mins / 60)} h ${mins % 60} min` : `${mins / 60} h`;
  }

  const plural = (n, one, many) => `${fmtInt(n)} ${Number(n) === 1 ? one : many}`;

  /** The scored features with their units, in the order people ask about them. */
  function featureRows(f) {
    const rows = [];
    const add = (k, v, fmt) => {
      if (v === undefined) return;
      rows.push([k, v === null ? "unknown (the log does not say)" : fmt(v)]);
    };
    add("Login hour (device time)", f.login_hour, (h) => `${String(h).padStart(2, "0")}:00–${String(h).padStart(2, "0")}:59`);
    add("Session length", f.session_duration ?? f.session_duration_min, fmtMinutes);
    add("Commands run", f.commands_count ?? f.commands, (n) => plural(n, "command", "commands"));
    add("Risky commands", f.risky_commands, (n) => plural(n, "command", "commands"));
    add("Failed logins before", f.failed_logins, (n) => plural(n, "failure", "failures"));
    add("Protocol", f.protocol, String);
    add("Typing speed", f.typing_speed ?? f.typing_speed_wpm, (v) => `${Math.round(Number(v))} words/min`);
    return rows;
  }

  /** A detail value as text: lists joined, numbers grouped, objects flattened. */
  function evidenceText(v) {
    if (v === null || v === undefined) return "";
    if (Array.isArray(v)) return v.map(evidenceText).join(", ");
    if (typeof v === "number") return Number.isInteger(v) ? fmtInt(v) : v.toFixed(1);
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${humanKey(k)}: ${evidenceText(x)}`).join("; ");
    return String(v);
  }

  const KEY_NAMES = {
    auth_method: "Auth method", users_sample: "User names tried", distinct_users: "Distinct user names tried",
    sample_sources: "Campaign members", sources: "Addresses in the campaign", failed_logins: "Failed logins",
    invalid_user_attempts: "Attempts for unknown users", attempts_per_hour: "Attempts per hour",
    active_hours: "Hours active", successes: "Successful logins", success_after_failures: "Success after failures",
    connections: "Connections", probes: "Probes (no login attempt)", protocols: "Protocols", program: "Program",
    session_id: "Session id", tty: "Terminal", failed_from_source: "Failures from this address",
    failed_for_user: "Failures for this user", failed_source_and_user: "Failures from here for this user",
    downloads: "Files downloaded", commands_total: "Commands seen", duration_reported: "Duration from the log",
    failing_sources: "Failing addresses", quiet_sources: "Quiet addresses", successes_after_failures: "Successes after failures",
  };
  const humanKey = (k) => KEY_NAMES[k] ?? k.replaceAll("_", " ");

  /** A link that shows the results matching `filters` (and nothing else). */
  function relatedLink(text, filters, label) {
    return el("a", {
      href: "#/results", class: "related", text, "aria-label": label,
      onclick: () => {
        $("#detail").close();
        const f = $("#results-filters");
        f.reset();
        f.user.value = filters.user ?? "";
        f.source_ip.value = filters.source_ip ?? "";
        resultsState = { filters: readFilters(), cursors: [null], last: null };
        loadResults();
      },
    });
  }

  function openDetail(res) {
    const dialog = $("#detail");
    $("#detail-title").replaceChildren(`Prediction #${res.id} `, badge(res.prediction));
    const kv = (pairs) => el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
    const ev = res.evidence || {};
    const details = ev.details || {};
    const meta = [
      ["Happened (UTC)", res.event_at ?? res.created_at],
      ["Ended (UTC)", res.ended_at],
      ["Stored (UTC)", res.created_at],
      ["Kind", kindText(res)],
      ["User", res.user],
      ["Source address", res.source_ip],
      ["Device", res.device],
      ["Host", ev.host],
      ["Log", ev.log],
      ["Campaign", ev.campaign ? ev.campaign.replaceAll("_", " ") : null],
      ["Confidence", pct(res.confidence)],
      ["Channel", res.source],
      ["Model", res.model_version],
    ].filter(([, v]) => v !== undefined && v !== null && v !== "");
    const evidence = Object.entries(details)
      .filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length) && !(typeof v === "object" && !Array.isArray(v)))
      .map(([k, v]) => [humanKey(k), evidenceText(v)]);
    const commands = Array.isArray(res.commands) && res.commands.length
      ? el("ol", { class: "commands" }, res.commands.map((c) => el("li", {}, el("code", { text: c }))))
      : el("p", { class: "muted", text: "No commands recorded." });
    const related = [];
    if (res.source_ip) related.push(relatedLink(`Everything from ${res.source_ip}`, { source_ip: res.source_ip }, `Results from the address ${res.source_ip}`));
    if (res.user) related.push(relatedLink(`Everything for user ${res.user}`, { user: res.user }, `Results for the user ${res.user}`));
    for (const member of (details.sample_sources || []).filter((m) => m !== res.source_ip).slice(0, 20)) {
      related.push(relatedLink(`Campaign member ${member}`, { source_ip: member }, `Results from the campaign member ${member}`));
    }
    const reasons = el("ul", { class: "reasons" });
    fillReasons(reasons, res.reasons);
    $("#detail-body").replaceChildren(
      kv(meta),
      el("h3", { text: "Why" }),
      reasons,
      el("h3", { text: "Evidence" }),
      evidence.length ? kv(evidence) : el("p", { class: "muted", text: "The agent sent no further evidence for this record." }),
      el("h3", { text: "Commands" }),
      commands,
      el("h3", { text: "Fingerprint" }),
      kv(featureRows(res.features || {})),
      related.length ? el("h3", { text: "Related" }) : null,
      related.length ? el("ul", { class: "related" }, related.map((a) => el("li", {}, a))) : null,
      feedbackBox(res),
    );
    dialog.showModal();
  }

  /** The analyst's label as a sentence (the stored value is the true class). */
  function labelText(res) {
    if (!res.analyst_label) return "Not labelled by an analyst.";
    const verdict = res.analyst_label === res.prediction ? "confirmed" : "marked false positive";
    const note = res.analyst_note ? ` Note: ${res.analyst_note}` : "";
    return `Analyst label: ${res.analyst_label} (${verdict}, ${res.labelled_at} UTC).${note}`;
  }

  /** "Mark false positive" / "Confirm": POST /api/results/{id}/feedback, then show what was stored. */
  function feedbackBox(res) {
    const status = el("p", { id: "detail-label", role: "status", text: labelText(res) });
    // Viewers see the label, not the buttons that change it.
    if (!can("analyst")) {
      return el("section", { class: "feedback", "aria-label": "Analyst feedback" }, el("h3", { text: "Analyst feedback" }), status);
    }
    const errBox = el("p", { class: "error", role: "alert", hidden: true });
    const send = async (label) => {
      showError(errBox, null);
      try {
        const r = await api(`/api/results/${res.id}/feedback`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ label }),
        });
        Object.assign(res, { analyst_label: r.analyst_label, labelled_at: r.labelled_at, analyst_note: r.analyst_note });
        status.textContent = labelText(res);
      } catch (e) {
        showError(errBox, e);
      }
    };
    return el("section", { class: "feedback", "aria-label": "Analyst feedback" },
      el("h3", { text: "Analyst feedback" }),
      status,
      el("div", { class: "actions" },
        el("button", { type: "button", id: "detail-fp", text: "Mark false positive", onclick: () => send("false_positive") }),
        el("button", { type: "button", id: "detail-confirm", text: "Confirm", onclick: () => send("true_positive") }),
      ),
      errBox,
    );
  }

  // ---- 5. Devices ----------------------------------------------------------

  async function loadDevices() {
    const errBox = $("#devices-error");
    showError(errBox, null);
    let devices = [];
    try {
      const r = await api("/api/devices");
      devices = Array.isArray(r) ? r : r.devices || [];
    } catch (e) {
      // A collector without fleet support answers 404: that is "no devices".
      if (e.status !== 404) showError(errBox, e);
    }
    $("#devices-empty").hidden = devices.length > 0 || !errBox.hidden;
    $("#devices-wrap").hidden = devices.length === 0;
    const tbody = $("#devices-table tbody");
    tbody.replaceChildren(
      ...devices.map((d) =>
        el("tr", {},
          el("td", {},
            el("a", { href: "#/results", text: d.name ?? d.device ?? d.id, onclick: () => showDevice(d.name ?? d.device) }),
            d.revoked ? el("span", { class: "muted", text: ` (revoked ${d.revoked})` }) : null),
          el("td", { text: d.last_seen ?? "never" }),
          el("td", { text: d.agent_version ?? "" }),
          el("td", { text: d.model_version ?? "" }),
          el("td", { class: "num", text: fmtInt(d.spool_depth) }),
          el("td", { class: "num", text: fmtInt(d.dropped ?? d.dropped_count) }),
          el("td", { class: "num", text: d.lines_read === undefined ? "" : fmtInt(d.lines_read) }),
          el("td", { class: "num", text: d.records === undefined ? "" : fmtInt(d.records) }),
          el("td", { text: d.last_error ?? "" }),
          el("td", { text: d.group ?? "" }),
          el("td", { class: "blocking", text: "" }),
        ),
      ),
    );
    loadBlocks(devices);
  }

  /** Unix seconds as `YYYY-MM-DD HH:MM:SS` UTC. */
  function unixTime(secs) {
    return secs ? new Date(secs * 1000).toISOString().slice(0, 19).replace("T", " ") : "";
  }

  /** What each device reports blocking: a cell per device, and one table. */
  async function loadBlocks(devices) {
    const rows = [];
    const cells = document.querySelectorAll("#devices-table tbody td.blocking");
    await Promise.all(devices.map(async (d, i) => {
      let r;
      try {
        r = await api(`/api/devices/${encodeURIComponent(d.name)}/blocks`);
      } catch (e) {
        // A collector without decisions answers 404: nothing to show.
        return;
      }
      const backend = r.backend ? (r.dry_run ? "dry run" : r.backend) : "off";
      const refused = r.refused.length ? `, ${r.refused.length} refused` : "";
      if (cells[i]) cells[i].textContent = r.backend ? `${r.blocks.length} (${backend})${refused}` : "off";
      for (const b of r.blocks) {
        const origin = b.origin === "collector" ? `decision ${b.decision}` : "agent";
        rows.push([d.name, b.address, origin + (r.dry_run ? " (dry run)" : ""), unixTime(b.since), unixTime(b.until), b.reason]);
      }
      for (const f of r.refused) {
        rows.push([d.name, f.address, `refused decision ${f.decision}`, "", "", f.reason]);
      }
    }));
    $("#blocks-empty").hidden = rows.length > 0;
    $("#blocks-wrap").hidden = rows.length === 0;
    $("#blocks-table tbody").replaceChildren(
      ...rows.map((cols) => el("tr", {}, ...cols.map((text) => el("td", { text })))),
    );
  }

  /** Opens the results page filtered to one device. */
  function showDevice(name) {
    if (!initialised.has("results")) {
      initialised.add("results");
      initResults();
    }
    $("#r-device").value = name ?? "";
    resultsState = { filters: readFilters(), cursors: [null], last: null };
  }

  // ---- 6. Alerts -----------------------------------------------------------

  function initAlerts() {
    $("#a-state").addEventListener("change", loadAlerts);
  }

  async function loadAlerts() {
    loadDestinations();
    const errBox = $("#alerts-error");
    showError(errBox, null);
    let alerts = [];
    try {
      alerts = (await api(`/api/alerts${query({ state: $("#a-state").value, limit: 200 })}`)).alerts || [];
    } catch (e) {
      showError(errBox, e);
    }
    $("#alerts-empty").hidden = alerts.length > 0 || !errBox.hidden;
    $("#alerts-wrap").hidden = alerts.length === 0;
    const act = (a, action) => async () => {
      try {
        await api(`/api/alerts/${a.id}/${action}`, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: "{}" });
      } catch (e) {
        showError(errBox, e);
        return;
      }
      loadAlerts();
    };
    $("#alerts-table tbody").replaceChildren(
      ...alerts.map((a) =>
        el("tr", {},
          el("td", { class: "num", text: a.id }),
          el("td", { text: a.state + (a.acknowledged_by && a.state === "acknowledged" ? ` by ${a.acknowledged_by}` : "") + (a.resolved_by ? ` by ${a.resolved_by}` : "") }),
          el("td", { text: a.rule }),
          el("td", { text: a.group_key }),
          el("td", { class: "num", text: fmtInt(a.count) }),
          el("td", { text: a.first_seen }),
          el("td", { text: a.last_seen }),
          el("td", {}, el("a", { href: a.results, target: "_blank", rel: "noopener", text: `#${a.first_result_id}–#${a.last_result_id}` })),
          el("td", {},
            can("analyst") && a.state === "open" ? el("button", { type: "button", class: "secondary", text: "Acknowledge", onclick: act(a, "ack") }) : null,
            can("analyst") && a.state !== "resolved" ? el("button", { type: "button", class: "secondary", text: "Resolve", onclick: act(a, "resolve") }) : null),
        ),
      ),
    );
  }

  /** The Destinations section of the Alerts page (analysts; the Test button for administrators). */
  async function loadDestinations() {
    if (!can("analyst")) return;
    const errBox = $("#destinations-error");
    showError(errBox, null);
    let list = [];
    try {
      list = (await api("/api/destinations")).destinations || [];
    } catch (e) {
      showError(errBox, e);
    }
    $("#destinations-empty").hidden = list.length > 0 || !errBox.hidden;
    $("#destinations-wrap").hidden = list.length === 0;
    const test = (d, button) => async () => {
      button.disabled = true;
      const status = $("#destinations-status");
      status.textContent = `Sending a test message to ${d.name}…`;
      try {
        const r = await api(`/api/destinations/${encodeURIComponent(d.name)}/test`, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: "{}" });
        status.textContent = r.ok ? `Test message ${r.id} delivered to ${d.name}.` : `Test message to ${d.name} failed: ${r.error}`;
      } catch (e) {
        status.textContent = "";
        showError(errBox, e);
      }
      button.disabled = false;
      loadDestinations();
    };
    $("#destinations-table tbody").replaceChildren(
      ...list.map((d) => {
        const button = can("admin") ? el("button", { type: "button", class: "secondary", text: "Test" }) : null;
        if (button) button.addEventListener("click", test(d, button));
        return el("tr", {},
          el("td", { text: d.name }),
          el("td", { text: d.type }),
          el("td", { text: d.target }),
          el("td", { class: "num", text: fmtInt(d.delivered) }),
          el("td", { class: "num", text: fmtInt(d.pending) }),
          el("td", { class: "num", text: fmtInt(d.retries_pending) }),
          el("td", { class: "num", text: fmtInt(d.failed) }),
          el("td", { text: d.last_success_at || "never" }),
          el("td", { text: d.last_error ? `${d.last_error} (${d.last_error_at})` : "" }),
          el("td", {}, button),
        );
      }),
    );
  }

  // ---- 7. Audit trail --------------------------------------------------------

  async function loadAudit() {
    const errBox = $("#audit-error");
    showError(errBox, null);
    let entries = [];
    try {
      entries = (await api("/api/audit?limit=200")).entries || [];
    } catch (e) {
      showError(errBox, e);
    }
    $("#audit-table tbody").replaceChildren(
      ...entries.map((e) =>
        el("tr", {},
          el("td", { class: "num", text: e.id }),
          el("td", { text: e.at }),
          el("td", { text: e.actor }),
          el("td", { text: e.action }),
          el("td", { text: e.target }),
          el("td", { text: e.detail }),
          el("td", { text: e.client ?? "" }),
        ),
      ),
    );
  }

  // ---- Start ---------------------------------------------------------------

  initLogin();
  window.addEventListener("hashchange", route);
  // Choosing the page already shown reloads its data (no hashchange fires).
  for (const a of $$("nav a[data-page]")) {
    a.addEventListener("click", () => {
      if (location.hash === a.getAttribute("href")) route();
    });
  }
  // A reloaded page keeps its session (the cookie): ask who we are.
  api("/api/session")
    .then((who) => {
      session = who;
      applyRole();
      route();
    })
    .catch(() => showLogin(null));
})();
