// The agents' inbox: one list across channels, the open conversation, the composer, live events.
import { api, ApiError, countdown, el, formatTime, pageData, setupHeader, t } from "./common.js";

const CHANNEL_ICONS = {
  email: "✉", sms: "SMS", whatsapp: "WA", voice: "☎", voicemail: "VM", fax: "FAX", chat: "CHAT", api: "API",
};
const me = pageData.agent;
const listPane = document.getElementById("list-pane");
const conversationPane = document.getElementById("conversation-pane");

const state = {
  filters: { view: "all", channel: "", status: "", team: "", breached: false, q: "", sort: "updated" },
  items: [],
  total: 0,
  selected: 0,
  agents: new Map(),
  teams: [],
  current: pageData.conversation_id ?? null,
  detail: null,
  others: new Map(),
  viewers: new Map(),
  imagesAllowed: new Set(),
  socket: null,
  checkAvailable: true,
};

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ---- the list -------------------------------------------------------------------------------

function listQuery() {
  const f = state.filters;
  const params = new URLSearchParams({ sort: f.sort, limit: "100" });
  if (f.view === "mine") params.set("assignee", "me");
  if (f.view === "unassigned") params.set("assignee", "unassigned");
  if (f.channel) params.set("channel", f.channel);
  if (f.status) params.set("status", f.status);
  if (f.team) params.set("team", f.team);
  if (f.breached) params.set("breached", "true");
  if (f.q) params.set("q", f.q);
  return params;
}

async function loadList() {
  const data = await api("GET", `/api/inbox?${listQuery()}`);
  state.items = data.items;
  state.total = data.total;
  state.selected = Math.min(state.selected, Math.max(state.items.length - 1, 0));
  renderRows();
}
const reloadList = debounce(() => loadList().catch(console.warn), 150);
const rerenderRows = debounce(() => renderRows(), 100);

function select(options, value, onChange, id) {
  const node = el("select", { id, onchange: (e) => onChange(e.target.value) });
  for (const [optionValue, label] of options) {
    node.append(el("option", { value: optionValue, selected: optionValue === value }, label));
  }
  return node;
}

function renderFilters() {
  const f = state.filters;
  const views = ["all", "mine", "unassigned"].map((view) =>
    el(`button.view${f.view === view ? ".active" : ""}`, {
      type: "button",
      id: `view-${view}`,
      onclick: () => { f.view = view; renderFilters(); reloadList(); },
    }, t(`filter.${view}`)),
  );
  const channels = [["", `${t("filter.channel")}: ${t("filter.any")}`],
    ...Object.keys(CHANNEL_ICONS).map((c) => [c, `${CHANNEL_ICONS[c]} ${c}`])];
  const statuses = [["", `${t("filter.status")}: ${t("filter.any")}`],
    ...pageData.statuses.map((s) => [s, t(`status.${s}`)])];
  const teams = [["", `${t("filter.team")}: ${t("filter.any")}`], ...state.teams.map((tm) => [String(tm.id), tm.name])];
  const sorts = ["updated", "due", "priority"].map((s) => [s, t(`sort.${s}`)]);
  const search = el("input", { id: "search", type: "search", placeholder: t("search"), value: f.q });
  search.addEventListener("input", debounce(() => { f.q = search.value.trim(); reloadList(); }, 250));
  const breached = el("input", { type: "checkbox", id: "breached", checked: f.breached,
    onchange: (e) => { f.breached = e.target.checked; reloadList(); } });
  const bar = el("div.filters", {},
    el("div.views", {}, views),
    search,
    select(channels, f.channel, (v) => { f.channel = v; reloadList(); }, "filter-channel"),
    select(statuses, f.status, (v) => { f.status = v; reloadList(); }, "filter-status"),
    select(teams, f.team, (v) => { f.team = v; reloadList(); }, "filter-team"),
    el("label.check", {}, breached, t("filter.breached")),
    select(sorts, f.sort, (v) => { f.sort = v; reloadList(); }, "sort"),
  );
  const existing = listPane.querySelector(".filters");
  if (existing) existing.replaceWith(bar);
  else listPane.prepend(bar);
}

function dueCell(iso, kind) {
  const c = countdown(iso);
  return el(`td.due.${c.state}`, { title: iso ? formatTime(iso) : "", dataset: { due: iso ?? "", kind } }, c.text);
}

function customerName(contact, id) {
  if (contact?.name) return contact.name;
  const address = contact?.address ?? contact?.identities?.[0]?.address;
  if (address?.startsWith("web-")) return `${t("visitor")} ${address.slice(4, 10)}`;
  return address ?? `#${id}`;
}

function viewersOf(conversationId) {
  const now = Date.now();
  const names = [...(state.viewers.get(conversationId)?.values() ?? [])]
    .filter((v) => now - v.seen < 45000).map((v) => v.name);
  return names.length ? el("span.viewers", { title: t("collision.viewing", { names: names.join(", ") }) }, names.join(", ")) : null;
}

function trackViewer(event) {
  const viewers = state.viewers.get(event.conversation_id) ?? new Map();
  if (event.data.state === "left") viewers.delete(event.agent_id);
  else viewers.set(event.agent_id, { name: event.data.name, seen: Date.now() });
  if (viewers.size) state.viewers.set(event.conversation_id, viewers);
  else state.viewers.delete(event.conversation_id);
  rerenderRows();
}

function renderRows() {
  const rows = state.items.map((item, index) => {
    const who = customerName(item.contact, item.contact_id);
    const assignee = item.assignee_id ? state.agents.get(item.assignee_id)?.display_name ?? `#${item.assignee_id}` : t("unassigned");
    const preview = item.preview ? item.preview.text : "";
    return el(`tr.row${index === state.selected ? ".selected" : ""}${item.id === state.current ? ".open" : ""}`,
      { dataset: { id: item.id }, onclick: () => { state.selected = index; openConversation(item.id); } },
      el("td.channel", { title: item.channel }, el(`span.badge.ch-${item.channel}`, {}, CHANNEL_ICONS[item.channel] ?? "•")),
      el("td.customer", {}, who),
      el("td.subject", {}, viewersOf(item.id), el("b", {}, item.subject ?? ""), item.subject && preview ? " — " : "",
        el("span.preview", {}, preview)),
      el(`td.status.s-${item.status}`, {}, t(`status.${item.status}`)),
      el("td.assignee", {}, assignee),
      el(`td.priority.p-${item.priority}`, {}, t(`priority.${item.priority}`)),
      dueCell(item.due_at, "sla"),
      dueCell(item.promise_due_at, "promise"),
    );
  });
  const head = el("thead", {}, el("tr", {}, ["", t("col.customer"), t("col.subject"), t("col.status"), t("col.assignee"),
    t("col.priority"), t("col.due"), t("col.promise")].map((h) => el("th", {}, h))));
  const table = el("table.conversations", { id: "conversations" }, head, el("tbody", {}, rows));
  const body = rows.length ? table : el("p.empty", {}, t("empty"));
  const existing = listPane.querySelector(".list-body");
  const wrapper = el("div.list-body", {}, body, el("p.total", {}, `${state.items.length} / ${state.total}`));
  if (existing) existing.replaceWith(wrapper);
  else listPane.append(wrapper);
}

setInterval(() => {
  for (const cell of document.querySelectorAll("td.due[data-due]")) {
    if (!cell.dataset.due) continue;
    const c = countdown(cell.dataset.due);
    cell.textContent = c.text;
    cell.className = `due ${c.state}`;
  }
}, 30000);

// ---- one conversation -----------------------------------------------------------------------

async function openConversation(id, push = true) {
  if (state.current && state.current !== id) report("left", state.current);
  state.current = id;
  state.others.clear();
  if (push) history.pushState({ id }, "", `/conversations/${id}`);
  renderRows();
  await loadConversation();
  report("viewing", id);
}

async function loadConversation() {
  if (!state.current) {
    conversationPane.replaceChildren();
    return;
  }
  const id = state.current;
  const [detail, tasks] = await Promise.all([
    api("GET", `/api/conversations/${id}`),
    api("GET", `/api/tasks?conversation_id=${id}`),
  ]);
  if (state.current !== id) return;
  state.detail = detail;
  state.tasks = tasks.items;
  renderConversation();
}
const reloadConversation = debounce(() => loadConversation().catch(console.warn), 150);

// What the agent is typing survives a re-render caused by a live event.
function keepInputs() {
  const values = new Map();
  for (const input of conversationPane.querySelectorAll("input[id], textarea[id]")) values.set(input.id, input.value);
  const focused = document.activeElement && conversationPane.contains(document.activeElement) ? document.activeElement.id : null;
  return () => {
    for (const [id, value] of values) {
      const input = document.getElementById(id);
      if (input && value && !input.value) input.value = value;
    }
    if (focused) document.getElementById(focused)?.focus();
  };
}

function renderConversation() {
  const { conversation: c, contact } = state.detail;
  const sameConversation = conversationPane.dataset.id === String(c.id);
  const restore = sameConversation ? keepInputs() : () => {};
  const keepDraft = sameConversation ? conversationPane.querySelector("#composer-text")?.value ?? "" : "";
  conversationPane.dataset.id = String(c.id);
  const header = el("div.conv-header", {},
    el("h2", {}, c.subject ?? customerName(contact, contact.id)),
    el("p.contact", {}, contact.name ?? "", " ", contact.identities.map((i) => `${i.kind}: ${i.address}`).join(", ")),
    el("div.collision", { id: "collision", hidden: true, role: "alert" }),
    controls(c),
    taskList(state.tasks ?? []),
  );
  const timeline = el("ol.timeline", { id: "timeline" }, timelineEntries());
  conversationPane.replaceChildren(header, timeline, composer(c, keepDraft));
  restore();
  renderCollision();
  timeline.lastElementChild?.scrollIntoView({ block: "end" });
}

function controls(c) {
  const agents = [["", t("unassigned")], ...[...state.agents.values()].map((a) => [String(a.id), a.display_name])];
  const assign = select(agents, c.assignee_id ? String(c.assignee_id) : "", (v) =>
    act("assign", { agent_id: v ? Number(v) : null }), "assign");
  const statuses = pageData.statuses.filter((s) => s !== "snoozed").map((s) => [s, t(`status.${s}`)]);
  if (c.status === "snoozed") statuses.push(["snoozed", t("status.snoozed")]);
  const status = select(statuses, c.status, (v) => act("status", { status: v }), "status");
  const priority = select(["low", "normal", "high", "urgent"].map((p) => [p, t(`priority.${p}`)]), c.priority,
    (v) => act("priority", { priority: v }), "priority");
  const until = el("input", { type: "datetime-local", id: "snooze-until" });
  const snooze = el("button", { type: "button", id: "snooze", onclick: () => {
    if (!until.value) return;
    act("status", { status: "snoozed", snoozed_until: new Date(until.value).toISOString() });
  } }, t("snooze.go"));
  const tags = c.tags.map((tag) => el("span.tag", {}, tag, el("button.untag", { type: "button", title: "×",
    onclick: () => act("tags", { remove: [tag] }) }, "×")));
  const newTag = el("input", { id: "tag-input", placeholder: t("tag.add"), size: 10 });
  newTag.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && newTag.value.trim()) {
      const tag = newTag.value.trim();
      newTag.value = "";
      act("tags", { add: [tag] });
    }
  });
  return el("div.controls", {},
    el("label", {}, t("assign"), " ", assign),
    el("label", {}, t("col.status"), " ", status),
    el("label", {}, t("col.priority"), " ", priority),
    el("label", {}, t("snooze"), " ", until), snooze,
    el("span.tags", {}, `${t("tags")}: `, tags, newTag),
  );
}

// What the team owes this customer (callbacks P3/P6, receipt checks E2, fax confirmations F3,
// follow-ups C3), soonest due first; an agent marks one done with a note of what was done.
function taskList(tasks) {
  if (!tasks.length) return null;
  return el("ul.tasks", { id: "tasks", "aria-label": t("tasks") }, tasks.map(taskEntry));
}

function taskEntry(task) {
  const due = countdown(task.due_at);
  const p = task.payload ?? {};
  const details = [p.reason, ...(p.points ?? [])].filter((x, i, all) => x && all.indexOf(x) === i);
  const note = el("input", { id: `task-note-${task.id}`, placeholder: t("task.note"), maxlength: 2000 });
  const errors = el("span.task-error", { role: "alert" });
  const done = el("button.task-done", { type: "button", onclick: async () => {
    errors.textContent = "";
    try {
      await api("POST", `/api/tasks/${task.id}/done`, { note: note.value.trim() || null });
    } catch (err) {
      errors.textContent = err.message;
      return;
    }
    await loadConversation();
  } }, t("task.done"));
  const call = task.kind === "callback" && p.phone ? el("button.task-call", { type: "button", onclick: async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    errors.textContent = "";
    try {
      await api("POST", `/api/tasks/${task.id}/call`);
      errors.textContent = t("task.calling");
    } catch (err) {
      errors.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  } }, t("task.call")) : null;
  return el("li.task", { dataset: { task: task.id, kind: task.kind } },
    el("b", {}, t(`task.${task.kind}`)), " · ",
    el(`span.due.${due.state}`, { title: formatTime(task.due_at) },
      due.state === "breached" ? due.text : `${t("task.due")} ${due.text}`),
    task.not_before ? ` · ${t("task.not_before")} ${formatTime(task.not_before)}` : "",
    p.phone ? ` · ☎ ${p.phone}` : "",
    details.length ? el("div.task-points", {}, details.join(" · ")) : null,
    el("div.task-actions", {}, call, note, done, errors),
  );
}

async function act(action, body) {
  try {
    await api("POST", `/api/conversations/${state.current}/${action}`, body);
  } catch (err) {
    alertError(err);
  }
  await loadConversation();
  reloadList();
}

function alertError(err) {
  const box = conversationPane.querySelector("#composer-findings");
  if (box) box.replaceChildren(el("li.finding.error", {}, err.message));
}

function timelineEntries() {
  const { messages, calls } = state.detail;
  const entries = [
    ...messages.map((m) => ({ at: m.created_at, node: messageEntry(m) })),
    ...calls.map((call) => ({ at: call.started_at, node: callEntry(call) })),
  ];
  entries.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return entries.map((e) => e.node);
}

function messageEntry(m) {
  const author = m.direction === "in" ? (m.sender ?? "") : state.agents.get(m.author_id)?.display_name ?? (m.automatic ? "auto" : "");
  const label = m.direction === "note" ? t("note") : t(`direction.${m.direction}`);
  const meta = el("div.meta", {}, `${label} · ${CHANNEL_ICONS[m.channel] ?? ""} ${m.channel} · ${author} · ${formatTime(m.created_at)}`,
    m.delivery ? el(`span.delivery.d-${m.delivery}`, {}, ` · ${m.delivery}`) : null);
  const parts = [meta];
  if (m.subject) parts.push(el("div.msg-subject", {}, m.subject));
  if (m.html) {
    const allowed = state.imagesAllowed.has(m.id);
    const frame = el("iframe.mail", { sandbox: "", src: `/api/messages/${m.id}/html${allowed ? "?images=true" : ""}`,
      title: m.subject ?? "mail", referrerpolicy: "no-referrer" });
    parts.push(frame);
    if (!allowed) {
      const note = el("div.frame-note", {}, t("images_blocked"), " ", el("button.show-images", { type: "button", onclick: () => {
        state.imagesAllowed.add(m.id);
        frame.src = `/api/messages/${m.id}/html?images=true`;
        note.remove();
      } }, t("show_images")));
      parts.push(note);
    }
  } else if (m.channel === "voicemail" || m.attachments.some((a) => a.content_type.startsWith("audio/"))) {
    parts.push(el("div.transcript", {}, el("b", {}, `${t("transcript")}: `), m.text));
  } else {
    parts.push(el("div.text", {}, m.text));
  }
  for (const a of m.attachments) parts.push(attachmentView(a, m.channel, faxPages(m)));
  return el(`li.entry.${m.direction}`, { dataset: { message: m.id } }, parts);
}

const MAX_PREVIEW_PAGES = 12;

function faxPages(m) {
  const pages = Number(m.channel === "fax" ? m.meta?.fax?.pages : 0);
  return Number.isInteger(pages) && pages > 0 ? Math.min(pages, MAX_PREVIEW_PAGES) : 0;
}

function attachmentView(a, channel, pageCount = 0) {
  const url = `/api/attachments/${a.id}`;
  const link = el("a.attachment", { href: url, download: a.filename }, `${a.filename} (${Math.ceil(a.size / 1024)} KB)`);
  if (a.content_type.startsWith("audio/")) return el("div.media", {}, el("audio", { controls: true, preload: "none", src: url }), link);
  if (a.content_type.split(";")[0].trim() === "application/pdf") {
    const sources = a.pages ?? Array.from({ length: pageCount }, (_, i) => `${url}/pages/${i + 1}.png`);
    const pages = sources.map((page, i) => el("img", { src: page, alt: `${a.filename} ${i + 1}`, loading: "lazy" }));
    return el("div.media.pdf", {}, el("span.badge", {}, "PDF"), " ", link,
      pages.length ? el("div.fax-pages", { title: t("fax.pages") }, pages) : null);
  }
  if (a.content_type.startsWith("image/") && (channel === "fax" || channel === "email" || channel === "chat")) {
    return el("div.media", {}, el("img.preview", { src: url, alt: a.filename, loading: "lazy" }), link);
  }
  return link;
}

function callEntry(call) {
  const answerSeconds = call.answered_at && call.ringing_at
    ? Math.round((Date.parse(call.answered_at) - Date.parse(call.ringing_at)) / 1000) : null;
  const callingBack = call.route === "callback_call";
  const outcome = callingBack && call.outcome !== "ringing" ? t(`call.${call.outcome}`)
    : call.answered_at ? call.outcome : `${call.outcome} (${t("call.unanswered")})`;
  const live = call.answered_at && !call.ended_at;
  const queued = call.route === "queue" && !call.ended_at;
  const kind = callingBack ? t("call.callback_call") : t("call");
  return el(`li.entry.call${call.answered_at ? "" : ".missed"}`, { dataset: { call: call.id } },
    el("div.meta", {}, `${CHANNEL_ICONS.voice} ${kind} · ${formatTime(call.started_at)}`,
      live ? el("span.live-call", {}, ` · ${t("call.live")}`) : null,
      call.wrapped_up_at ? el("span.wrapped", {}, ` · ${t("call.wrapped")}`) : null,
      queued ? el("span.queued", {}, ` · ${t("call.queued")}`) : null),
    el("div.text", {},
      `${t("call.outcome")}: ${outcome}`,
      call.rings_to_answer !== null ? ` · ${t("call.rings")}: ${call.rings_to_answer.toFixed(1)}` : "",
      answerSeconds !== null ? ` · ${t("call.answer")}: ${answerSeconds} s` : ""),
    queued ? takeForm(call) : null,
    live && !callingBack ? transferForm(call) : null,
    call.answered_at && !call.wrapped_up_at ? wrapUpForm(call) : null,
    el("ul.findings.call-errors", { role: "alert" }),
  );
}

// Calls: an agent moves a live call to a colleague (P4) and closes a call with its summary (P5).
async function callAction(call, action, body, form) {
  const errors = form.closest(".entry").querySelector(".call-errors");
  errors.replaceChildren();
  try {
    await api("POST", `/api/calls/${call.id}/${action}`, body);
  } catch (err) {
    errors.replaceChildren(el("li.finding.error", {}, err.message));
    return;
  }
  for (const input of form.querySelectorAll("input, textarea")) input.value = "";
  await loadConversation();
}

function takeForm(call) {
  const form = el("div.call-form.take", {});
  form.append(el("button.take", { type: "button", onclick: () => callAction(call, "take", undefined, form) }, t("call.take")));
  return form;
}

// A caller waiting too long in the queue (P3): every agent is prompted to take the call or call back.
function promptWaitingCaller(event) {
  let box = document.getElementById("call-prompts");
  if (!box) {
    box = el("aside.call-prompts", { id: "call-prompts", "aria-live": "assertive" });
    document.body.append(box);
  }
  const minutes = Math.max(1, Math.round((event.data.waited_seconds ?? 0) / 60));
  const prompt = el("div.call-prompt", { role: "alert", dataset: { call: event.data.call_id } },
    t("call.waiting_long", { minutes, line: event.data.line ?? "" }), " ");
  prompt.append(
    el("button.open", { type: "button", onclick: () => { prompt.remove(); openConversation(event.conversation_id); } }, t("call.open")),
    el("button.dismiss", { type: "button", title: t("call.dismiss"), onclick: () => prompt.remove() }, "×"),
  );
  box.append(prompt);
}

function transferForm(call) {
  const targets = [["", t("call.transfer_to")],
    ...[...state.agents.values()].filter((a) => a.id !== call.answered_by).map((a) => [`agent:${a.id}`, a.display_name]),
    ...state.teams.map((tm) => [`team:${tm.name}`, `${t("filter.team")}: ${tm.name}`])];
  const target = select(targets, "", () => {}, `transfer-target-${call.id}`);
  const reason = el("input", { id: `transfer-reason-${call.id}`, placeholder: t("call.reason"), maxlength: 300 });
  const form = el("div.call-form.transfer", {}, target, reason);
  form.append(el("button.transfer", { type: "button", onclick: () => {
    const [kind, value] = target.value.split(/:(.*)/s);
    if (!kind) return;
    const body = kind === "agent" ? { agent_id: Number(value) } : { team: value };
    callAction(call, "transfer", { ...body, reason: reason.value.trim() || t("call.reason_default") }, form);
  } }, t("call.transfer")));
  return form;
}

function wrapUpForm(call) {
  const summary = el("textarea", { id: `wrap-up-${call.id}`, rows: 2, placeholder: t("call.summary"), maxlength: 20000 });
  const form = el("div.call-form.wrap-up", {}, summary);
  form.append(el("button.wrap-up", { type: "button", onclick: () => callAction(call, "wrap-up", { summary: summary.value }, form) },
    t("call.wrap_up")));
  return form;
}

// ---- the composer ---------------------------------------------------------------------------

// The channels to answer on and the templates, fetched once per conversation.
async function composeOptions(id) {
  if (state.compose?.id === id) return state.compose.data;
  let data = { routes: [], templates: {}, max_upload_bytes: 0 };
  try {
    data = await api("GET", `/api/conversations/${id}/compose`);
  } catch (err) {
    console.warn(err);
  }
  state.compose = { id, data };
  return data;
}

// What the agent chose for the reply (route and uploaded files) survives re-renders.
function draftState(id) {
  if (state.draft?.id !== id) state.draft = { id, route: null, files: [] };
  return state.draft;
}

const routeKey = (r) => `${r.account}\u0000${r.to}`;

function humanSize(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}

async function uploadFile(file) {
  const headers = { Accept: "application/json", "Content-Type": file.type || "application/octet-stream" };
  if (pageData.csrf_token) headers["X-CSRF-Token"] = pageData.csrf_token;
  const response = await fetch(`/api/uploads?filename=${encodeURIComponent(file.name)}`, {
    method: "POST", headers, credentials: "same-origin", body: file,
  });
  const data = (response.headers.get("Content-Type") ?? "").startsWith("application/json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function composer(c, draft) {
  const mode = { note: false };
  const chosen = draftState(c.id);
  const options = { routes: [], templates: {}, max_upload_bytes: 0 };
  const text = el("textarea", { id: "composer-text", rows: 4 });
  text.value = draft;
  const subject = el("input", { id: "composer-subject", placeholder: t("subject"),
    value: c.subject ? `Re: ${c.subject}`.replace(/^Re: Re: /, "Re: ") : "" });
  const findings = el("ul.findings", { id: "composer-findings" });
  const send = el("button.send", { type: "button", id: "send" }, t("send"));
  const reason = el("span.blocked", { id: "send-blocked" });
  const via = el("span.via", { id: "composer-via" }, `${t("via")} ${CHANNEL_ICONS[c.channel] ?? ""} ${c.channel} (${c.channel_account})`);
  const routeSelect = el("select", { id: "composer-route", hidden: true, title: t("composer.route") });
  const templateSelect = el("select", { id: "composer-template", hidden: true });
  const fileInput = el("input", { type: "file", id: "composer-files", multiple: true, hidden: true });
  const attach = el("button.attach", { type: "button", id: "composer-attach", hidden: true,
    onclick: () => fileInput.click() }, t("composer.attach"));
  const fileList = el("ul.files", { id: "composer-file-list" });
  const tabs = el("div.tabs", {},
    el("button.tab.active", { type: "button", id: "tab-reply", onclick: () => setMode(false) }, t("reply")),
    el("button.tab", { type: "button", id: "tab-note", onclick: () => setMode(true) }, t("note")),
    via, routeSelect, templateSelect, attach,
  );
  const route = () => options.routes.find((r) => routeKey(r) === chosen.route) ?? null;
  const channel = () => route()?.channel ?? c.channel;
  function routeBody(body) {
    const r = route();
    if (r && !r.current) body.via = { account: r.account, to: r.to };
    if (chosen.files.length) body.attachments = chosen.files.map((f) => f.id);
    if (!subject.hidden) body.subject = subject.value;
    return body;
  }
  function showRoute() {
    const r = route();
    subject.hidden = r ? !r.subject : c.channel !== "email";
    attach.hidden = mode.note || !r?.attachments;
    const names = options.templates[channel()] ?? [];
    templateSelect.replaceChildren(el("option", { value: "" }, t("composer.template")),
      ...names.map((name) => el("option", { value: name }, name.replaceAll("_", " "))));
    templateSelect.hidden = mode.note || names.length === 0;
    renderFiles();
  }
  function renderFiles() {
    fileList.replaceChildren(...chosen.files.map((f) => el("li.file", { dataset: { upload: f.id } },
      `${f.filename} (${humanSize(f.size)}) `,
      el("button.remove-file", { type: "button", title: t("composer.remove_file"), onclick: () => {
        chosen.files = chosen.files.filter((x) => x.id !== f.id);
        renderFiles();
        check();
      } }, "×"))));
    if (chosen.files.length && !mode.note && !route()?.attachments) {
      fileList.append(el("li.finding.warning", {}, t("composer.no_attachments")));
    }
  }
  function setMode(note) {
    mode.note = note;
    tabs.querySelector("#tab-reply").classList.toggle("active", !note);
    tabs.querySelector("#tab-note").classList.toggle("active", note);
    send.textContent = note ? t("add_note") : t("send");
    box.classList.toggle("note-mode", note);
    routeSelect.hidden = note || options.routes.length < 2;
    showRoute();
    if (note) { findings.replaceChildren(); setBlocked([]); } else check();
  }
  function setBlocked(errors) {
    send.disabled = errors.length > 0;
    reason.textContent = errors.length ? `${t("composer.blocked")} ${errors.map((f) => f.message).join("; ")}` : "";
  }
  function showFindings(list) {
    findings.replaceChildren(...list.map((f) => el(`li.finding.${f.severity}`, { dataset: { rule: f.rule_id } },
      el("b", {}, f.rule_id ? `${f.rule_id} ` : ""), f.message,
      f.suggestion ? el("div.suggestion", {}, `${t("composer.suggestion")} ${f.suggestion}`) : null)));
    setBlocked(list.filter((f) => f.severity === "error"));
  }
  async function check() {
    if (mode.note || !state.checkAvailable || !text.value.trim()) {
      if (!text.value.trim()) showFindings([]);
      return;
    }
    try {
      const result = await api("POST", `/api/conversations/${c.id}/check`, routeBody({ text: text.value }));
      showFindings(result.findings ?? []);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) state.checkAvailable = false;
      else if (err instanceof ApiError) showFindings([{ severity: "error", rule_id: "", message: err.message }]);
    }
  }
  const checkSoon = debounce(check, 300);
  const typing = debounce(() => report("typing", c.id), 200);
  text.addEventListener("input", () => { checkSoon(); if (!mode.note) typing(); });
  subject.addEventListener("input", checkSoon);
  routeSelect.addEventListener("change", () => { chosen.route = routeSelect.value; showRoute(); check(); });
  templateSelect.addEventListener("change", async () => {
    const name = templateSelect.value;
    templateSelect.value = "";
    if (!name) return;
    try {
      const rendered = await api("POST", `/api/conversations/${c.id}/template`, { template: name, channel: channel() });
      const { text, subject, check } = chosen.view;
      const at = text.selectionStart ?? text.value.length;
      const before = text.value.slice(0, at);
      const gap = before && !before.endsWith("\n") ? "\n\n" : "";
      text.value = `${before}${gap}${rendered.text.trim()}${text.value.slice(at)}`;
      if (rendered.subject && !subject.hidden && !subject.value.trim()) subject.value = rendered.subject;
      text.focus();
      check();
    } catch (err) {
      chosen.view.findings.replaceChildren(el("li.finding.error", {}, err.message));
    }
  });
  fileInput.addEventListener("change", async () => {
    const files = [...fileInput.files];
    fileInput.value = "";
    for (const file of files) {
      if (options.max_upload_bytes && file.size > options.max_upload_bytes) {
        findings.replaceChildren(el("li.finding.error", {},
          t("composer.too_large", { name: file.name, size: humanSize(options.max_upload_bytes) })));
        continue;
      }
      fileList.append(el("li.file.uploading", {}, t("composer.uploading", { name: file.name })));
      try {
        chosen.files.push(await uploadFile(file));
      } catch (err) {
        chosen.view.findings.replaceChildren(el("li.finding.error", {}, `${file.name}: ${err.message}`));
      }
      chosen.view.renderFiles();
    }
    chosen.view.check();
  });
  send.addEventListener("click", async () => {
    if (!text.value.trim()) return;
    send.disabled = true;
    try {
      if (mode.note) {
        await api("POST", `/api/conversations/${c.id}/notes`, { text: text.value });
      } else {
        await api("POST", `/api/conversations/${c.id}/reply`, routeBody({ text: text.value }));
        chosen.files = [];
      }
      text.value = "";
      renderFiles();
      findings.replaceChildren(el("li.finding.ok", {}, t("composer.sent")));
      await loadConversation();
      reloadList();
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && Array.isArray(err.body?.findings)) showFindings(err.body.findings);
      else findings.replaceChildren(el("li.finding.error", {}, err.message));
    } finally {
      if (!reason.textContent) send.disabled = false;
    }
  });
  const box = el("div.composer", { id: "composer" }, tabs, subject, text, fileList, fileInput, findings,
    el("div.actions", {}, reason, send));
  // A live event may re-render the composer while an upload or a template request is under way;
  // their results go to the composer on screen.
  chosen.view = { text, subject, findings, renderFiles, check };
  showRoute();
  composeOptions(c.id).then((data) => {
    Object.assign(options, data);
    if (!options.routes.some((r) => routeKey(r) === chosen.route)) {
      const current = options.routes.find((r) => r.current) ?? options.routes[0];
      chosen.route = current ? routeKey(current) : null;
    }
    routeSelect.replaceChildren(...options.routes.map((r) => el("option", { value: routeKey(r), selected: routeKey(r) === chosen.route },
      `${CHANNEL_ICONS[r.channel] ?? ""} ${r.channel} → ${r.to} (${r.account})`)));
    routeSelect.hidden = mode.note || options.routes.length < 2;
    via.hidden = !routeSelect.hidden;
    showRoute();
    if (text.value.trim() || chosen.files.length) checkSoon();
  });
  if (draft) checkSoon();
  return box;
}

// ---- presence and live events ---------------------------------------------------------------

function report(type, conversationId) {
  if (state.socket?.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify({ type, conversation_id: conversationId }));
  }
}

function renderCollision() {
  const box = document.getElementById("collision");
  if (!box) return;
  const now = Date.now();
  const live = [...state.others.values()].filter((o) => now - o.seen < 45000);
  const typing = live.filter((o) => o.state === "typing" && now - o.seen < 8000);
  const viewing = live.filter((o) => !typing.includes(o));
  const lines = [];
  if (typing.length) lines.push(el("div.typing", {}, t("collision.typing", { names: typing.map((o) => o.name).join(", ") })));
  if (viewing.length) lines.push(el("div.viewing", {}, t("collision.viewing", { names: viewing.map((o) => o.name).join(", ") })));
  box.replaceChildren(...lines);
  box.hidden = lines.length === 0;
}

function onEvent(event) {
  if (event.kind === "resync") {
    reloadList();
    if (state.current) reloadConversation();
    return;
  }
  if (event.kind === "presence") {
    if (event.agent_id === me.id) return;
    trackViewer(event);
    if (event.conversation_id !== state.current) return;
    if (event.data.state === "left") state.others.delete(event.agent_id);
    else {
      const known = state.others.has(event.agent_id);
      state.others.set(event.agent_id, { name: event.data.name, state: event.data.state, seen: Date.now() });
      if (!known && event.data.state === "viewing") report("viewing", state.current);
    }
    renderCollision();
    return;
  }
  if (event.kind === "call.waiting_long") promptWaitingCaller(event);
  if (event.kind === "call.picked_up" || event.kind === "call.ended") {
    document.querySelector(`#call-prompts .call-prompt[data-call="${event.data.call_id}"]`)?.remove();
  }
  if (event.conversation_id) {
    reloadList();
    if (event.conversation_id === state.current) reloadConversation();
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  const live = document.getElementById("live");
  socket.addEventListener("open", () => {
    live.textContent = t("live");
    live.className = "live on";
    if (state.current) report("viewing", state.current);
    reloadList();
  });
  socket.addEventListener("message", (m) => onEvent(JSON.parse(m.data)));
  socket.addEventListener("close", () => {
    live.textContent = t("offline");
    live.className = "live off";
    setTimeout(connect, 2000);
  });
  state.socket = socket;
}

setInterval(() => {
  if (state.current) report("viewing", state.current);
  renderCollision();
  if (state.viewers.size) rerenderRows();
}, 15000);

// ---- keyboard -------------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  const typingInField = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
  if (e.key === "Escape") {
    document.activeElement?.blur();
    return;
  }
  if (typingInField || e.ctrlKey || e.metaKey || e.altKey) return;
  const move = (delta) => {
    state.selected = Math.max(0, Math.min(state.items.length - 1, state.selected + delta));
    renderRows();
    listPane.querySelector("tr.selected")?.scrollIntoView({ block: "nearest" });
  };
  const actions = {
    j: () => move(1),
    k: () => move(-1),
    Enter: () => state.items[state.selected] && openConversation(state.items[state.selected].id),
    "/": () => document.getElementById("search")?.focus(),
    r: () => { document.getElementById("tab-reply")?.click(); document.getElementById("composer-text")?.focus(); },
    n: () => { document.getElementById("tab-note")?.click(); document.getElementById("composer-text")?.focus(); },
    e: () => state.current && act("status", { status: "resolved" }),
  };
  if (actions[e.key]) {
    e.preventDefault();
    actions[e.key]();
  }
});

window.addEventListener("popstate", (e) => {
  const id = e.state?.id ?? null;
  if (id) openConversation(id, false);
});

// ---- start ----------------------------------------------------------------------------------

async function start() {
  setupHeader();
  const [agents, teams] = await Promise.all([api("GET", "/api/agents"), api("GET", "/api/teams")]);
  for (const a of agents.items ?? agents) state.agents.set(a.id, a);
  state.teams = teams.items ?? teams;
  renderFilters();
  await loadList();
  if (state.current) await openConversation(state.current, false);
  connect();
}

start().catch((err) => console.error(err));
