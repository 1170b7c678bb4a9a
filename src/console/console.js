// The partner console: signs in, lists the reports the caller may run with their parameters (read
// from the API document), runs one, and shows its chart, its table with margins, a CSV download
// and the privacy budget. It calls nothing but the public API, with the caller's own token, held in
// memory only. No data is written into the page as markup: text goes in as text.
"use strict";

const API = "/api/v1";
const FRAMEWORK = ["from", "to", "operation"];
let token = null;
let spec = null;
let catalogue = [];

const $ = (id) => document.getElementById(id);

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function call(path, options) {
  const headers = Object.assign({}, (options && options.headers) || {});
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 && token) {
    // The access token expired (or the session was ended): back to signing in, leaving nothing of
    // what was shown for the next person at this screen.
    reset();
    $("signin-error").textContent = "Your session has ended: sign in again.";
    $("email").focus();
    throw new Error("signed out");
  }
  return response;
}

function revoke(url) {
  if (url && url.startsWith("blob:")) URL.revokeObjectURL(url);
}

// Forgets the session and everything shown: results, chart, CSV, budget, the signed-in name.
function reset() {
  token = null;
  $("work").hidden = true;
  $("result").hidden = true;
  $("signin").hidden = false;
  $("signout").hidden = true;
  $("who").textContent = "";
  revoke($("chart").src);
  $("chart").removeAttribute("src");
  $("chart").alt = "";
  $("chart-caption").textContent = "";
  revoke($("csv").href);
  $("csv").hidden = true;
  $("table").tHead.replaceChildren();
  $("table").tBodies[0].replaceChildren();
  $("budget-text").textContent = "";
  $("budget-meter").value = 0;
  $("run-error").textContent = "";
}

async function signOut() {
  const held = token;
  reset();
  if (held) {
    await fetch(API + "/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + held }, keepalive: true });
  }
  $("signin-error").textContent = "Signed out.";
  $("email").focus();
}

// An API problem as words for people: its detail, and each field's message.
async function problem(response) {
  try {
    const body = await response.json();
    const fields = (body.errors || []).map((e) => (e.field || e.name || "") + ": " + (e.message || e.detail || ""));
    const detail = [body.detail || body.title || response.statusText].concat(fields).join(" ");
    return { type: body.type || "", detail: detail.replace(/`/g, ""), body };
  } catch (_) {
    return { type: "", detail: response.statusText, body: null };
  }
}

async function signIn(event) {
  event.preventDefault();
  $("signin-error").textContent = "";
  const body = { email: $("email").value, password: $("password").value };
  if (!$("code-row").hidden && $("code").value) body.code = $("code").value;
  const response = await call(API + "/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const p = await problem(response);
    if (p.type.endsWith(":second-factor-required")) {
      $("code-row").hidden = false;
      $("code").focus();
    }
    $("signin-error").textContent = p.detail;
    return;
  }
  const session = await response.json();
  token = session.access_token;
  $("password").value = "";
  $("code").value = "";
  await start();
}

async function start() {
  const me = await (await call(API + "/me")).json();
  $("signout").hidden = false;
  $("signin-error").textContent = "";
  const org = me.organization ? ", " + me.organization.name : "";
  $("who").textContent = "Signed in as " + me.user.email + " (" + me.user.role + org + ")";
  $("signin").hidden = true;
  $("work").hidden = false;
  spec = await (await fetch("/openapi.json")).json();
  const listed = await call(API + "/reports");
  if (!listed.ok) {
    $("run-error").textContent = (await problem(listed)).detail;
    return;
  }
  catalogue = await listed.json();
  const select = $("report");
  select.replaceChildren();
  for (const report of catalogue) select.append(el("option", report.title, { value: report.id }));
  select.addEventListener("change", showParameters);
  showParameters();
  await showBudget();
  $("report").focus();
}

// The report's query parameters as the API document states them: its own (a choice of values)
// and the framework's period and operation.
function showParameters() {
  const report = catalogue.find((r) => r.id === $("report").value);
  $("report-description").textContent = report ? report.description : "";
  const fieldset = $("parameters");
  fieldset.replaceChildren(el("legend", "Parameters"));
  const path = spec.paths[API + "/reports/" + $("report").value];
  const params = (path && path.get && path.get.parameters) || [];
  for (const param of params) {
    if (param.in !== "query" || param.name === "format") continue;
    const id = "p-" + param.name;
    fieldset.append(el("label", param.name.replace(/_/g, " "), { for: id }));
    let input;
    const schema = param.schema || {};
    if (Array.isArray(schema.enum)) {
      input = el("select", null, { id, name: param.name });
      if (!schema.default) input.append(el("option", "(any)", { value: "" }));
      for (const value of schema.enum) {
        const option = el("option", String(value).replace(/_/g, " "), { value });
        if (value === schema.default) option.selected = true;
        input.append(option);
      }
    } else if (param.name === "from" || param.name === "to") {
      input = el("input", null, { id, name: param.name, type: "month" });
    } else {
      input = el("input", null, { id, name: param.name, type: "text" });
    }
    if (param.description) input.setAttribute("aria-describedby", id + "-help");
    fieldset.append(input);
    if (param.description) fieldset.append(el("p", param.description, { id: id + "-help", class: "muted" }));
  }
}

function query() {
  const parts = new URLSearchParams();
  for (const input of $("parameters").querySelectorAll("input, select")) {
    if (input.value) parts.set(input.name, input.value);
  }
  return parts;
}

async function run(event) {
  event.preventDefault();
  const button = $("report-form").querySelector("button");
  button.disabled = true;
  $("report-form").setAttribute("aria-busy", "true");
  $("run-error").textContent = "";
  try {
    const id = $("report").value;
    const base = API + "/reports/" + encodeURIComponent(id);
    const params = query();
    const response = await call(base + "?" + params.toString());
    if (!response.ok) {
      $("run-error").textContent = (await problem(response)).detail;
      await showBudget();
      return;
    }
    const release = await response.json();
    // The chart and the CSV are the same release, recorded: they cost nothing more. The window is
    // pinned to the release's own, so a new month cannot make them another (charged) question.
    if (release.from) params.set("from", release.from);
    if (release.to) params.set("to", release.to);
    params.set("format", "svg");
    const chart = await call(base + "?" + params.toString());
    params.set("format", "csv");
    const csv = await call(base + "?" + params.toString());
    showRelease(release, chart.ok ? await chart.text() : null, csv.ok ? await csv.blob() : null);
    await showBudget();
  } catch (error) {
    if (token) $("run-error").textContent = "The report could not be run: " + error.message;
  } finally {
    button.disabled = false;
    $("report-form").removeAttribute("aria-busy");
  }
}

function showRelease(release, svg, csv) {
  $("result").hidden = false;
  $("result-title").textContent = release.title;
  const exact = !release.privacy.guarded;
  $("result-note").textContent = exact
    ? "Exact figures of your organisation's own cases (no noise, no budget)."
    : "Noisy counts with 95% margins; " + release.privacy.population + ". Counts below " + release.privacy.k + " are withheld." +
      (release.release && release.release.repeat ? " Asked before this period: the recorded release, free." : "");
  const img = $("chart");
  revoke(img.src);
  if (svg) {
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const desc = doc.querySelector("desc");
    // The title names the image; the description, read once, is the caption.
    img.alt = "Chart: " + release.title;
    $("chart-caption").textContent = desc ? desc.textContent : "";
    img.src = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
    img.hidden = false;
  } else {
    img.removeAttribute("src");
    img.alt = "";
    img.hidden = true;
    $("chart-caption").textContent = "The chart could not be drawn; the table below holds the release.";
  }
  const link = $("csv");
  revoke(link.href);
  link.hidden = !csv;
  if (csv) {
    link.href = URL.createObjectURL(csv);
    link.download = release.report + ".csv";
  }
  const head = $("table").tHead;
  const row = el("tr");
  for (const d of release.dimensions) row.append(el("th", String(d).replace(/_/g, " "), { scope: "col" }));
  for (const h of ["victims", "margin (95%)"]) row.append(el("th", h, { scope: "col" }));
  head.replaceChildren(row);
  const body = $("table").tBodies[0];
  body.replaceChildren();
  for (const cell of release.cells) {
    const tr = el("tr");
    cell.key.forEach((key, i) => {
      const name = key === "_total" ? "total" : key.replace(/_/g, " ");
      tr.append(i === cell.key.length - 1 ? el("th", name, { scope: "row" }) : el("td", name));
    });
    if (cell.withheld) {
      tr.append(el("td", "withheld", { class: "withheld" }));
      tr.append(el("td", "±" + cell.margin, { class: "n" }));
    } else {
      tr.append(el("td", cell.victims, { class: "n" }));
      tr.append(el("td", "±" + cell.margin, { class: "n" }));
    }
    body.append(tr);
  }
  $("result-title").focus();
}

async function showBudget() {
  const response = await call(API + "/reports/budget");
  if (!response.ok) return;
  const budget = await response.json();
  const meter = $("budget-meter");
  meter.max = budget.allowance > 0 ? budget.allowance : 1;
  meter.value = budget.left;
  const renews = new Date(budget.renews_at).toISOString().slice(0, 10);
  $("budget-text").textContent =
    "Left this period: " + budget.left + " of " + budget.allowance + " (" + budget.unit + "); " +
    "a new question costs " + budget.cost_per_release + ", a repeated one nothing. Renews on " + renews + ".";
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  // Closing or leaving the page ends the session on the server too.
  window.addEventListener("pagehide", () => {
    if (token) fetch(API + "/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + token }, keepalive: true });
  });
  $("report-form").addEventListener("submit", run);
  $("result-title").setAttribute("tabindex", "-1");
});
