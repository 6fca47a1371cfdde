// omnihub web-chat widget. Put on a page:
//   <script src="https://HUB/webhooks/webchat/NAME/widget.js" data-hub="https://HUB" data-channel="NAME" async></script>
// It draws a chat button in a shadow root, talks to the hub over a websocket, keeps the
// visitor's token in localStorage, and shows an offline form outside opening hours.
// Everything the visitor or an agent writes is shown as text, never as HTML.
(() => {
  const script = document.currentScript;
  if (!script) return;
  const src = new URL(script.src);
  const hub = (script.dataset.hub || src.origin).replace(/\/$/, "");
  const channel = script.dataset.channel || src.pathname.split("/")[3];
  const base = `${hub}/webhooks/webchat/${encodeURIComponent(channel)}`;
  const lang = (script.dataset.lang || navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  const storageKey = `omnihub-visitor-${channel}`;
  const storage = (() => { try { return window.localStorage; } catch { return null; } })();
  let visitor = storage?.getItem(storageKey) || "";
  let socket = null;
  let texts = null;
  const pending = new Map();

  const host = document.createElement("div");
  host.id = "omnihub-chat";
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = `
    :host { all: initial; }
    .button { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border: 0; border-radius: 24px;
      padding: 12px 18px; background: #2458d6; color: #fff; font: 600 14px system-ui, sans-serif; cursor: pointer; }
    .panel { position: fixed; right: 20px; bottom: 76px; z-index: 2147483000; width: 330px; height: 440px;
      background: #fff; border: 1px solid #d0d5dd; border-radius: 10px; display: flex; flex-direction: column;
      font: 14px/1.4 system-ui, "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; color: #1d2430; box-shadow: 0 8px 24px rgba(0,0,0,.15); }
    .panel[hidden] { display: none; }
    header { padding: 10px 14px; background: #2458d6; color: #fff; border-radius: 10px 10px 0 0; font-weight: 600; }
    .log { flex: 1; overflow: auto; padding: 10px; display: flex; flex-direction: column; gap: 6px; }
    .msg { max-width: 85%; padding: 6px 10px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
    .visitor { align-self: flex-end; background: #2458d6; color: #fff; }
    .agent { align-self: flex-start; background: #eef1f5; }
    .system { align-self: center; background: #fff7d6; font-size: 12px; }
    .error { align-self: center; color: #c62828; font-size: 12px; }
    form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #e3e6eb; }
    form.offline { flex-direction: column; }
    input, textarea { font: inherit; border: 1px solid #d0d5dd; border-radius: 6px; padding: 6px; flex: 1; }
    button.send { border: 0; background: #2458d6; color: #fff; border-radius: 6px; padding: 6px 12px; cursor: pointer; }
  `;
  const make = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const button = make("button", "button", "Chat");
  button.type = "button";
  const panel = make("section", "panel");
  panel.hidden = true;
  const header = make("header", null, "");
  const log = make("div", "log");
  log.setAttribute("aria-live", "polite");
  panel.append(header, log);
  root.append(style, button, panel);

  const show = (from, text) => {
    log.append(make("div", `msg ${from}`, text));
    log.scrollTop = log.scrollHeight;
  };

  function chatForm() {
    const form = make("form", "chat");
    const input = make("input");
    input.name = "text";
    input.autocomplete = "off";
    input.maxLength = 4000;
    const send = make("button", "send", lang === "zh" ? "发送" : "Send");
    send.type = "submit";
    form.append(input, send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text || socket?.readyState !== WebSocket.OPEN) return;
      const id = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
      pending.set(id, text);
      socket.send(JSON.stringify({ type: "message", id, text }));
      input.value = "";
    });
    return form;
  }

  function offlineForm() {
    const form = make("form", "offline");
    const name = make("input");
    name.name = "name";
    name.placeholder = lang === "zh" ? "姓名" : "Your name";
    const email = make("input");
    email.name = "email";
    email.type = "email";
    email.required = true;
    email.placeholder = lang === "zh" ? "邮箱" : "E-mail address";
    const text = make("textarea");
    text.name = "text";
    text.required = true;
    text.rows = 4;
    const send = make("button", "send", lang === "zh" ? "提交留言" : "Send message");
    send.type = "submit";
    form.append(name, email, text, send);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!visitor) visitor = newToken();
      const response = await fetch(`${base}/offline`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "omit",
        body: JSON.stringify({ visitor, name: name.value || null, email: email.value, text: text.value, language: lang }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        form.remove();
        show("system", body.text);
      } else {
        show("error", body.error || "error");
      }
    });
    return form;
  }

  function newToken() {
    const bytes = new Uint8Array(24);
    crypto.getRandomValues(bytes);
    const token = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    storage?.setItem(storageKey, token);
    return token;
  }

  function connect() {
    const url = new URL(`${base}/socket`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("lang", lang);
    if (visitor) url.searchParams.set("visitor", visitor);
    socket = new WebSocket(url);
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "welcome") {
        visitor = data.visitor;
        storage?.setItem(storageKey, visitor);
        log.replaceChildren();
        for (const entry of data.history) show(entry.from, entry.text);
      } else if (data.type === "message") {
        show(data.from, data.text);
      } else if (data.type === "ack") {
        if (pending.delete(data.id)) show("visitor", data.text);
      } else if (data.type === "error") {
        show("error", data.error === "rate_limited" ? (lang === "zh" ? "发送太频繁，请稍后再试" : "Too many messages; please wait a moment") : data.error);
      }
    });
    socket.addEventListener("close", () => setTimeout(connect, 3000));
  }

  async function open() {
    panel.hidden = !panel.hidden;
    if (texts) return;
    const response = await fetch(`${base}/config?lang=${lang}`, { credentials: "omit" });
    texts = await response.json();
    header.textContent = texts.title;
    if (texts.online) {
      panel.append(chatForm());
      connect();
    } else {
      show("system", texts.offline);
      panel.append(offlineForm());
    }
  }

  button.addEventListener("click", open);
  fetch(`${base}/config?lang=${lang}`, { credentials: "omit" })
    .then((r) => r.json())
    .then((c) => { button.textContent = c.title; })
    .catch(() => {});
  (document.body || document.documentElement).append(host);
})();
