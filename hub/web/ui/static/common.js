// Shared helpers of the UI pages: strings, page data, JSON requests with the CSRF token, DOM building.

const readBlock = (id) => {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : {};
};

export const strings = readBlock("strings");
export const pageData = readBlock("page-data");

export function t(key, values = {}) {
  let text = strings[key] ?? key;
  for (const [name, value] of Object.entries(values)) text = text.replace(`{${name}}`, value);
  return text;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && pageData.csrf_token) headers["X-CSRF-Token"] = pageData.csrf_token;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw new ApiError(401, { error: "not logged in" });
  }
  const isJson = (response.headers.get("Content-Type") ?? "").startsWith("application/json");
  const data = isJson ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// el("tag.class", {attr: value, onclick: fn}, ...children): children are nodes or text.
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag);
  if (classes.length) node.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setupHeader() {
  const language = document.getElementById("language");
  language?.addEventListener("change", async () => {
    await api("PATCH", "/api/me", { language: language.value });
    window.location.reload();
  });
  const availability = document.getElementById("availability");
  availability?.addEventListener("change", () => api("PATCH", "/api/me", { availability: availability.value }));
  document.getElementById("logout")?.addEventListener("click", async () => {
    await api("POST", "/api/logout");
    window.location.assign("/login");
  });
}

export function formatTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(document.documentElement.lang === "zh" ? "zh-CN" : "en-GB", {
    dateStyle: "short",
    timeStyle: "short",
  });
}

// A countdown to a deadline, with the class that colours it: ok, at-risk (under an hour) or breached.
export function countdown(iso, now = Date.now()) {
  if (!iso) return { text: "", state: "none" };
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  const magnitude = Math.abs(seconds);
  const h = Math.floor(magnitude / 3600);
  const m = Math.floor((magnitude % 3600) / 60);
  const span = h >= 48 ? `${Math.floor(h / 24)}d` : h ? `${h}h ${m}m` : `${m}m`;
  if (seconds < 0) return { text: `${span} ${t("overdue")}`, state: "breached" };
  return { text: span, state: seconds < 3600 ? "at-risk" : "ok" };
}
