// LargeForge web UI: a dependency-free page over the control plane's /api/v1 routes.
// Signs in with the session cookie and sends the CSRF token (from the login answer, or the lf_csrf
// cookie after a reload) on every write. Text from the server is only ever set with textContent.
// Every API path below is written out in full, from /api/v1 on: tests/platform/test_web.py checks
// each one against the server's OpenAPI document.
"use strict";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const state = { csrf: null, me: null, project: null, streams: new Map(), progress: new Map() };

// ---------------------------------------------------------------- HTTP

class ApiError extends Error {}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    const csrf = state.csrf || cookie("lf_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? parseJson(text) : null;
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(error.message || `${response.status} ${response.statusText}`);
  }
  return data;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (_) {
    return text;
  }
}

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

function rows(body) {
  return Array.isArray(body) ? body : (body && Array.isArray(body.data) ? body.data : []);
}

function pid() {
  return encodeURIComponent(state.project);
}

// ---------------------------------------------------------------- DOM helpers

function $(selector) {
  return document.querySelector(selector);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(message, isError) {
  const box = $("#message");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(show.timer);
  show.timer = setTimeout(() => { box.hidden = true; }, isError ? 8000 : 3000);
}

function guarded(action) {
  return async (event) => {
    if (event && event.preventDefault) event.preventDefault();
    try {
      await action(event);
    } catch (error) {
      show(error.message, true);
    }
  };
}

function shortTime(value) {
  return value ? String(value).slice(0, 19).replace("T", " ") : "";
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") {
    return Array.isArray(value) ? value.map(cellText).join(", ")
      : Object.entries(value).map(([k, v]) => `${k}=${cellText(v)}`).join(", ");
  }
  return typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value) ? shortTime(value) : String(value);
}

// A table of `items` with `columns`: [header, item => cell value or Node].
function fillTable(selector, items, columns, empty) {
  const table = $(selector);
  table.tHead.replaceChildren(el("tr", {}, ...columns.map(([header]) => el("th", {}, header))));
  const body = table.tBodies[0];
  if (!items.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: String(columns.length) }, empty)));
    return;
  }
  body.replaceChildren(...items.map((item) => el("tr", {}, ...columns.map(([, get]) => {
    const value = get(item);
    return el("td", {}, value instanceof Node ? value : cellText(value));
  }))));
}

// ---------------------------------------------------------------- YAML (the subset recipes use)

// Block mappings and lists by indentation, "- key: value" items, quoted and plain scalars,
// flow [..] / {..} collections, | and > block strings, # comments. Enough for recipes and job
// specs; anything fancier can be pasted as JSON.
function parseYaml(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try { return JSON.parse(trimmed); } catch (_) { /* flow YAML: parsed below */ }
  }
  const lines = [];
  let open = 0;  // unclosed [ and { of a flow collection that continues on the next lines
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = stripComment(raw);
    if (open > 0 && lines.length) {
      lines[lines.length - 1].text += " " + line.trim();
    } else if (line.trim() && line.trim() !== "---") {
      lines.push({ indent: line.length - line.trimStart().length, text: line.trim(), raw, number: index + 1 });
    } else {
      return;
    }
    open += bracketBalance(line);
  });
  const cursor = { i: 0 };
  const value = lines.length ? parseBlock(lines, cursor, lines[0].indent) : null;
  if (cursor.i < lines.length) throw new Error(`YAML line ${lines[cursor.i].number}: unexpected indentation`);
  return value;
}

function bracketBalance(line) {
  let quote = null, balance = 0;
  for (const c of line) {
    if (quote) { if (c === quote) quote = null; }
    else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") balance++;
    else if (c === "]" || c === "}") balance--;
  }
  return balance;
}

function stripComment(line) {
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) { if (c === quote) quote = null; continue; }
    if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

function parseBlock(lines, cursor, indent) {
  return lines[cursor.i].text.startsWith("- ") || lines[cursor.i].text === "-"
    ? parseList(lines, cursor, indent) : parseMap(lines, cursor, indent);
}

function parseList(lines, cursor, indent) {
  const out = [];
  while (cursor.i < lines.length && lines[cursor.i].indent === indent && /^-( |$)/.test(lines[cursor.i].text)) {
    const line = lines[cursor.i];
    const rest = line.text.slice(1).trim();
    if (!rest) {
      cursor.i++;
      out.push(cursor.i < lines.length && lines[cursor.i].indent > indent ? parseBlock(lines, cursor, lines[cursor.i].indent) : null);
    } else if (splitKey(rest)) {
      // "- key: value" opens a mapping whose other keys sit under the first key.
      const inner = indent + line.text.length - rest.length;
      lines[cursor.i] = { ...line, indent: inner, text: rest };
      out.push(parseMap(lines, cursor, inner));
    } else {
      cursor.i++;
      out.push(scalar(rest, line.number));
    }
  }
  return out;
}

function parseMap(lines, cursor, indent) {
  const out = {};
  while (cursor.i < lines.length && lines[cursor.i].indent === indent) {
    const line = lines[cursor.i];
    const pair = splitKey(line.text);
    if (!pair) throw new Error(`YAML line ${line.number}: expected "key: value", got ${JSON.stringify(line.text)}`);
    const [key, rest] = pair;
    cursor.i++;
    if (rest === "|" || rest === ">" || rest === "|-" || rest === ">-") {
      out[key] = blockString(lines, cursor, indent, rest);
    } else if (rest) {
      out[key] = scalar(rest, line.number);
    } else if (cursor.i < lines.length && (lines[cursor.i].indent > indent ||
        (lines[cursor.i].indent === indent && /^-( |$)/.test(lines[cursor.i].text)))) {
      out[key] = parseBlock(lines, cursor, lines[cursor.i].indent);
    } else {
      out[key] = null;
    }
  }
  return out;
}

function blockString(lines, cursor, indent, style) {
  const parts = [];
  while (cursor.i < lines.length && lines[cursor.i].indent > indent) {
    parts.push(lines[cursor.i].raw.slice(lines[cursor.i].indent));
    cursor.i++;
  }
  const text = style.startsWith("|") ? parts.join("\n") : parts.join(" ");
  return style.endsWith("-") ? text : text + "\n";
}

function splitKey(text) {
  const match = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#\[\]{},][^:]*?)\s*:(?:\s+(.*))?$/.exec(text);
  if (!match) return null;
  return [String(scalar(match[1], 0)), (match[2] || "").trim()];
}

function scalar(text, number) {
  if (text.startsWith('"')) return JSON.parse(text);
  if (text.startsWith("'")) return text.slice(1, -1).replace(/''/g, "'");
  if (text.startsWith("[") || text.startsWith("{")) return flow(text, number);
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  if (/^(null|Null|NULL|~)$/.test(text)) return null;
  if (/^[-+]?\d+$/.test(text)) return parseInt(text, 10);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(text)) return parseFloat(text);
  return text;
}

function flow(text, number) {
  let i = 0;
  const fail = () => { throw new Error(`YAML line ${number}: cannot read ${JSON.stringify(text)}`); };
  const space = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  const item = (stops) => {
    space();
    if (text[i] === "[") {
      i++; const list = [];
      for (space(); text[i] !== "]"; space()) {
        list.push(item(",]")); space();
        if (text[i] === ",") i++; else if (text[i] !== "]") fail();
      }
      i++; return list;
    }
    if (text[i] === "{") {
      i++; const map = {};
      for (space(); text[i] !== "}"; space()) {
        const key = item(":"); space();
        if (text[i] !== ":") fail();
        i++; map[String(key)] = item(",}"); space();
        if (text[i] === ",") i++; else if (text[i] !== "}") fail();
      }
      i++; return map;
    }
    let start = i;
    if (text[i] === '"' || text[i] === "'") {
      const quote = text[i++];
      while (i < text.length && text[i] !== quote) i += text[i] === "\\" && quote === '"' ? 2 : 1;
      i++;
      return scalar(text.slice(start, i), number);
    }
    while (i < text.length && !stops.includes(text[i])) i++;
    return scalar(text.slice(start, i).trim(), number);
  };
  const value = item("");
  space();
  if (i !== text.length) fail();
  return value;
}

// ---------------------------------------------------------------- session

async function start() {
  wireForms();
  try {
    state.me = await api("GET", "/api/v1/auth/me");
  } catch (_) {
    return showLogin();
  }
  await enterApp();
}

function showLogin() {
  $("#login-view").hidden = false;
  $("#app-view").hidden = true;
  $("#session").hidden = true;
}

async function enterApp() {
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#session").hidden = false;
  $("#whoami").textContent = state.me.email;
  const projects = await api("GET", "/api/v1/projects");
  const picker = $("#project-picker");
  picker.replaceChildren(...rows(projects).map((p) => el("option", { value: p.id }, `${p.name} (${p.role})`)));
  const remembered = localStorage.getItem("largeforge.project");
  if (rows(projects).some((p) => p.id === remembered)) picker.value = remembered;
  state.project = picker.value || null;
  if (!state.project) show("You are not a member of any project yet: ask an admin to add you.", true);
  else await refresh("jobs");
}

const login = guarded(async (event) => {
  const form = event.target;
  const answer = await api("POST", "/api/v1/auth/login", { email: form.email.value, password: form.password.value });
  state.csrf = answer.csrf_token;
  form.password.value = "";
  state.me = await api("GET", "/api/v1/auth/me");
  await enterApp();
});

const logout = guarded(async () => {
  await api("POST", "/api/v1/auth/logout");
  closeStreams();
  state.csrf = null;
  state.me = null;
  showLogin();
});

// ---------------------------------------------------------------- jobs and live progress

async function loadJobs() {
  const jobs = rows(await api("GET", `/api/v1/projects/${pid()}/jobs`));
  const body = $("#jobs-table").tBodies[0];
  if (!jobs.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "6" }, "No jobs yet: submit one.")));
  } else {
    body.replaceChildren(...jobs.map(jobRow));
  }
  for (const job of jobs) {
    if (!TERMINAL.has(job.state)) follow(job.id);
  }
}

function jobRow(job) {
  const bar = el("progress", { max: "1", value: job.state === "succeeded" ? "1" : "0" });
  const label = el("span", { class: "metrics" });
  const actions = el("td", {},
    el("button", { type: "button", onclick: guarded(() => showJob(job.id)) }, "details"), " ",
    TERMINAL.has(job.state) ? null : el("button", { type: "button", onclick: guarded(() => jobAction(job.id, "cancel")) }, "cancel"),
    job.state === "failed" || job.state === "cancelled"
      ? el("button", { type: "button", onclick: guarded(() => jobAction(job.id, "retry")) }, "retry") : null,
  );
  const row = el("tr", { "data-job": job.id },
    el("td", {}, job.name ? `${job.name} (${job.id.slice(0, 8)})` : job.id),
    el("td", {}, job.kind),
    el("td", { class: `state-${job.state}` }, job.state),
    el("td", {}, bar, label),
    el("td", {}, shortTime(job.created_at)),
    actions,
  );
  const last = state.progress.get(job.id);
  if (last) paintProgress(row, last);
  return row;
}

// One EventSource per unfinished job; the browser reconnects with Last-Event-ID by itself. Each
// event's data is {"seq", "time", "type", "data": payload}; the stream ends with an "end" event.
function follow(jobId) {
  if (state.streams.has(jobId)) return;
  const source = new EventSource(`/api/v1/projects/${pid()}/jobs/${encodeURIComponent(jobId)}/events`);
  state.streams.set(jobId, source);
  const payload = (event) => {
    const body = parseJson(event.data);
    return body && typeof body === "object" && "data" in body ? body.data : body;
  };
  const rowOf = () => document.querySelector(`tr[data-job="${CSS.escape(jobId)}"]`);
  source.addEventListener("progress", (event) => {
    const record = payload(event);
    state.progress.set(jobId, record);
    const row = rowOf();
    if (row) paintProgress(row, record);
  });
  source.addEventListener("state", (event) => {
    const record = payload(event);
    const row = rowOf();
    if (row && record.state) {
      row.cells[2].textContent = record.state;
      row.cells[2].className = `state-${record.state}`;
    }
  });
  // Without this the browser would reopen the finished stream every few seconds.
  source.addEventListener("end", () => {
    source.close();
    state.streams.delete(jobId);
    loadJobs().catch((error) => show(error.message, true));
  });
}

function paintProgress(row, record) {
  const [bar, label] = row.cells[3].children;
  if (record.total) {
    bar.max = record.total;
    bar.value = record.event === "finish" ? record.total : (record.completed || 0);
  } else {
    bar.removeAttribute("value");  // indeterminate
  }
  const skip = new Set(["event", "task", "completed", "total", "time", "stage"]);
  const metrics = Object.entries(record).filter(([key]) => !skip.has(key))
    .map(([key, value]) => `${key}=${typeof value === "number" ? Number(value.toPrecision(4)) : value}`);
  label.textContent = [record.task, record.total ? `${record.completed || 0}/${record.total}` : "", ...metrics]
    .filter(Boolean).join("  ");
}

function closeStreams() {
  for (const source of state.streams.values()) source.close();
  state.streams.clear();
  state.progress.clear();
}

const JOB_ACTIONS = {
  cancel: (jobId) => api("POST", `/api/v1/projects/${pid()}/jobs/${encodeURIComponent(jobId)}/cancel`),
  retry: (jobId) => api("POST", `/api/v1/projects/${pid()}/jobs/${encodeURIComponent(jobId)}/retry`),
};

async function jobAction(jobId, verb) {
  const job = await JOB_ACTIONS[verb](jobId);
  show(`job ${job.id}: ${verb} → ${job.state}`);
  await loadJobs();
}

async function showJob(jobId) {
  const job = await api("GET", `/api/v1/projects/${pid()}/jobs/${encodeURIComponent(jobId)}`);
  let logs = "";
  try {
    const body = await api("GET", `/api/v1/projects/${pid()}/jobs/${encodeURIComponent(jobId)}/logs`);
    logs = typeof body === "string" ? body
      : Array.isArray(body && body.lines) ? body.lines.join("\n") : JSON.stringify(body, null, 2);
  } catch (error) {
    logs = `(no logs: ${error.message})`;
  }
  $("#job-detail-title").textContent = `job ${job.id} — ${job.state}`;
  $("#job-detail-body").textContent = `${JSON.stringify(job, null, 2)}\n\n--- logs ---\n${logs}`;
  $("#job-detail").hidden = false;
}

const submitJob = guarded(async (event) => {
  const form = event.target;
  const kind = form.kind.value;
  let spec;
  try {
    spec = parseYaml(form.spec.value);
  } catch (error) {
    throw new Error(`the recipe is not valid YAML/JSON: ${error.message}`);
  }
  if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new Error("the recipe must be a mapping of fields");
  if (kind === "train" && !("recipe" in spec)) spec = { recipe: spec };
  const body = { kind, spec, priority: parseInt(form.priority.value || "0", 10) };
  if (form.name.value.trim()) body.name = form.name.value.trim();
  const job = await api("POST", `/api/v1/projects/${pid()}/jobs`, body);
  show(`submitted job ${job.id}`);
  selectTab("jobs");
  await loadJobs();
});

// ---------------------------------------------------------------- datasets, models, deployments, usage

async function loadDatasets() {
  const datasets = rows(await api("GET", `/api/v1/projects/${pid()}/datasets`));
  fillTable("#datasets-table", datasets, [
    ["name", (d) => d.name],
    ["versions", (d) => d.versions],
    ["kind", (d) => d.latest && d.latest.kind],
    ["rows", (d) => d.latest && d.latest.row_count],
    ["recipe ref", (d) => d.latest && d.latest.ref],
    ["updated", (d) => d.updated_at],
  ], "No datasets yet: upload a .jsonl, .json, .csv or .parquet file.");
}

const uploadDataset = guarded(async (event) => {
  const form = event.target;
  const data = new FormData();
  data.append("file", form.file.files[0]);
  data.append("name", form.name.value);
  const version = await api("POST", `/api/v1/projects/${pid()}/datasets`, data);
  show(`${version.created ? "stored" : "already stored"} ${version.name}@${version.number}: ${version.row_count} rows`);
  form.reset();
  await loadDatasets();
});

async function loadModels() {
  const models = rows(await api("GET", `/api/v1/projects/${pid()}/models`));
  const latest = (m) => (m.versions && m.versions.length ? m.versions[m.versions.length - 1] : {});
  fillTable("#models-table", models, [
    ["name", (m) => m.name],
    ["versions", (m) => (m.versions || []).length],
    ["latest", (m) => latest(m).ref],
    ["kind", (m) => latest(m).kind],
    ["aliases", (m) => Object.entries(m.aliases || {}).map(([alias, number]) => `@${alias} → ${number}`).join(", ")],
    ["metrics", (m) => latest(m).metrics],
    ["created", (m) => latest(m).created_at],
  ], "No models yet: a training or pipeline job registers them.");
}

async function loadDeployments() {
  const deployments = rows(await api("GET", `/api/v1/projects/${pid()}/deployments`));
  fillTable("#deployments-table", deployments, [
    ["id", (d) => d.id],
    ["serves", (d) => d.version],
    ["status", (d) => d.status],
    ["replicas", (d) => `${(d.instances || []).filter((r) => r.healthy).length}/${d.replicas} healthy`],
    ["OpenAI base URL", (d) => location.origin + d.endpoint],
    ["", (d) => d.desired_state === "stopped"
      ? el("button", { type: "button", onclick: guarded(() => deploymentAction(d.id, "start")) }, "start")
      : el("button", { type: "button", onclick: guarded(() => deploymentAction(d.id, "stop")) }, "stop")],
  ], "No deployments: deploy a model version above.");
}

const DEPLOYMENT_ACTIONS = {
  stop: (id) => api("POST", `/api/v1/projects/${pid()}/deployments/${encodeURIComponent(id)}/stop`),
  start: (id) => api("POST", `/api/v1/projects/${pid()}/deployments/${encodeURIComponent(id)}/start`),
};

async function deploymentAction(deploymentId, verb) {
  const deployment = await DEPLOYMENT_ACTIONS[verb](deploymentId);
  show(`deployment ${deployment.id}: ${deployment.status}`);
  await loadDeployments();
}

const createDeployment = guarded(async (event) => {
  const form = event.target;
  const body = { model: form.model.value.trim(), replicas: parseInt(form.replicas.value || "1", 10) };
  const deployment = await api("POST", `/api/v1/projects/${pid()}/deployments`, body);
  show(`deployment ${deployment.id}: ${deployment.status}`);
  await loadDeployments();
});

async function loadUsage() {
  const usage = await api("GET", `/api/v1/projects/${pid()}/usage?group_by=key`);
  const groups = rows(usage);
  const all = groups.length ? [...groups, { ...usage.totals, label: "total" }] : [];
  fillTable("#usage-table", all, [
    ["API key", (u) => u.label || u.group || (u.label === "total" ? "" : "browser sessions")],
    ["requests", (u) => u.requests],
    ["prompt tokens", (u) => u.prompt_tokens],
    ["completion tokens", (u) => u.completion_tokens],
    ["total tokens", (u) => u.total_tokens],
  ], "No usage recorded yet: requests through a deployment's gateway are metered here.");
}

// ---------------------------------------------------------------- tabs and wiring

const LOADERS = { jobs: loadJobs, datasets: loadDatasets, models: loadModels, deployments: loadDeployments, usage: loadUsage };

async function refresh(tab) {
  if (state.project && LOADERS[tab]) await LOADERS[tab]();
}

function selectTab(tab) {
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === tab);
  for (const panel of document.querySelectorAll(".tab")) panel.hidden = panel.id !== `tab-${tab}`;
}

function wireForms() {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#submit-form").addEventListener("submit", submitJob);
  $("#upload-form").addEventListener("submit", uploadDataset);
  $("#deploy-form").addEventListener("submit", createDeployment);
  $("#job-detail-close").addEventListener("click", () => { $("#job-detail").hidden = true; });
  $("#project-picker").addEventListener("change", guarded(async (event) => {
    closeStreams();
    state.project = event.target.value;
    localStorage.setItem("largeforge.project", state.project);
    const active = document.querySelector("#tabs button.active");
    await refresh(active ? active.dataset.tab : "jobs");
  }));
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", guarded(async () => {
      selectTab(button.dataset.tab);
      await refresh(button.dataset.tab);
    }));
  }
  for (const button of document.querySelectorAll("[data-refresh]")) {
    button.addEventListener("click", guarded(() => refresh(button.dataset.refresh)));
  }
}

document.addEventListener("DOMContentLoaded", () => { start().catch((error) => show(error.message, true)); });
