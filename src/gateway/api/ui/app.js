// The clawops Control UI: one small page per hash route, talking to /api with the session cookie
// and the CSRF header. No framework, no build step, nothing from another origin. Every value from
// the gateway is put on the page as text, never as HTML.
"use strict";

const CSRF = { "X-Clawops-Csrf": "1" };

const TEXT = {
  en: {
    overview: "Overview", chat: "Chat", pairing: "Pairing", nodes: "Nodes", crons: "Crons",
    audit: "Audit", signout: "Sign out", loading: "Loading…", signin: "Sign in",
    token: "Gateway token", signin_help: "Paste the gateway token. In a cluster it is in the Secret <agent>-gateway-token (kubectl get secret … -o jsonpath='{.data.token}' | base64 -d); standalone, in the state directory's gateway-token file.",
    wrong_link: "The token in the link is wrong.", limited: "Too many failed sign-ins from this address; wait a minute.",
    unset: "This gateway has no token set, so its API is off.",
    health: "Health", model: "Model", channels: "Channels", tools: "Tools", disabled: "Disabled",
    version: "Version", uptime: "Up", ok: "ok", problem: "problem", none: "none",
    pending_codes: "Waiting for approval", approve: "Approve", reject: "Reject", revoke: "Revoke",
    approved_senders: "Approved senders", no_pending: "Nobody waits.",
    pending_nodes: "Nodes waiting for approval", paired_nodes: "Paired nodes",
    approvals: "Commands waiting for the owner", allow_once: "Allow once", allow_always: "Always allow", deny: "Deny",
    connected: "connected", disconnected: "disconnected", revoked: "revoked",
    run_now: "Run now", ran: "Ran", send: "Send", message: "Message",
    tool_calls: "Tool calls", node_commands: "Node commands", nothing: "Nothing recorded.",
    since: "Since", filter: "Filter", error: "Error",
    name: "Name", state: "State", sender: "Sender", code: "Code", expires: "Expires", actions: "Actions",
    node: "Node", command: "Command", why: "Why", platform: "Platform", address: "Address",
    last_seen: "Last seen", schedule: "Schedule", time_zone: "Time zone", when: "When", tool: "Tool",
    outcome: "Outcome", took: "Took", arguments: "Arguments", decision: "Decision", exit: "Exit",
    next_run: "Next run", suspended: "suspended", delivered: "Delivered", summary: "Summary",
    exec_policy: "exec policy", security: "Security", ask: "Ask", ask_fallback: "When nobody answers",
    save: "Save", allowlist: "Allowlist", pattern: "Pattern", add: "Add", remove: "Remove",
    last_used: "Last used", never: "never", kept_in: "Kept in",
    allowlist_empty: "Empty: every command but the stdin-only safe programs is asked about.",
    pattern_help: "The resolved path of a program, e.g. /usr/bin/uptime or ~/bin/*.",
    alerts: "Alerts", alerts_off: "Alerts are off", told_now: "Told, still holding", cleared_recently: "Cleared lately",
    object: "Object", reason: "Reason", detail: "Detail", since_when: "Since", all_clear: "Nothing is wrong.",
    gone: "object deleted", now: "now",
    cluster: "Cluster", no_client: "no Kubernetes client", node_counts: "{c} connected, {p} paired, {w} waiting",
    counters: "Since start", c_messages_in: "Messages in", c_messages_out: "Messages out",
    c_llm_failures: "Model failures", c_llm_retries: "Model retries", c_node_execs: "Node commands",
    c_tool_calls: "Tool calls", c_api_auth_failures: "Refused sign-ins",
  },
  zh: {
    overview: "概览", chat: "对话", pairing: "配对", nodes: "节点", crons: "定时任务",
    audit: "审计", signout: "退出", loading: "加载中…", signin: "登录",
    token: "网关令牌", signin_help: "粘贴网关令牌。集群中它在 Secret <agent>-gateway-token 里（kubectl get secret … -o jsonpath='{.data.token}' | base64 -d）；单机运行时在状态目录的 gateway-token 文件里。",
    wrong_link: "链接里的令牌不对。", limited: "这个地址登录失败太多次，请等一分钟。",
    unset: "这个网关没有设置令牌，API 已关闭。",
    health: "健康", model: "模型", channels: "频道", tools: "工具", disabled: "已停用",
    version: "版本", uptime: "运行", ok: "正常", problem: "问题", none: "无",
    pending_codes: "等待批准", approve: "批准", reject: "拒绝", revoke: "撤销",
    approved_senders: "已批准的用户", no_pending: "没有等待的请求。",
    pending_nodes: "等待批准的节点", paired_nodes: "已配对的节点",
    approvals: "等待主人批准的命令", allow_once: "允许一次", allow_always: "总是允许", deny: "拒绝",
    connected: "已连接", disconnected: "未连接", revoked: "已撤销",
    run_now: "立即运行", ran: "已运行", send: "发送", message: "消息",
    tool_calls: "工具调用", node_commands: "节点命令", nothing: "没有记录。",
    since: "时间范围", filter: "筛选", error: "错误",
    name: "名称", state: "状态", sender: "用户", code: "配对码", expires: "过期", actions: "操作",
    node: "节点", command: "命令", why: "原因", platform: "平台", address: "地址",
    last_seen: "最后在线", schedule: "计划", time_zone: "时区", when: "时间", tool: "工具",
    outcome: "结果", took: "耗时", arguments: "参数", decision: "决定", exit: "退出码",
    next_run: "下次运行", suspended: "已暂停", delivered: "已送达", summary: "摘要",
    exec_policy: "执行策略", security: "安全级别", ask: "询问", ask_fallback: "无人应答时",
    save: "保存", allowlist: "允许列表", pattern: "模式", add: "添加", remove: "移除",
    last_used: "上次使用", never: "从未", kept_in: "保存于",
    allowlist_empty: "空：除只读标准输入的安全程序外，每条命令都会先询问。",
    pattern_help: "程序解析后的路径，例如 /usr/bin/uptime 或 ~/bin/*。",
    alerts: "告警", alerts_off: "告警已关闭", told_now: "已通知、仍存在", cleared_recently: "最近恢复",
    object: "对象", reason: "原因", detail: "详情", since_when: "开始于", all_clear: "一切正常。",
    gone: "对象已删除", now: "现在",
    cluster: "集群", no_client: "没有 Kubernetes 客户端", node_counts: "{c} 个在线，{p} 个已配对，{w} 个等待",
    counters: "启动以来", c_messages_in: "收到消息", c_messages_out: "发出消息",
    c_llm_failures: "模型失败", c_llm_retries: "模型重试", c_node_execs: "节点命令",
    c_tool_calls: "工具调用", c_api_auth_failures: "被拒登录",
  },
};
const LANG = (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
const t = (k) => TEXT[LANG][k] || TEXT.en[k] || k;

/// An element with attributes and children (strings become text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick" || k === "onsubmit") e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) e.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  return e;
}

class Unauthorized extends Error {}

async function api(method, path, body) {
  const opts = { method, headers: { ...CSRF }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path.replace(/^\//, ""), opts);
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401) throw new Unauthorized(data && data.message);
  if (!r.ok) throw new Error((data && data.message) || `HTTP ${r.status}`);
  return data;
}

const main = () => document.getElementById("main");

function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes);
  m.focus();
}

/// How many times a page was asked for. A page draws only if it is still the last one asked
/// for: one whose data came back after the user moved on must not replace the newer page.
let routes = 0;

function draw(me, ...nodes) {
  if (me === routes) show(...nodes);
}

function failed(e) {
  if (e instanceof Unauthorized) return signin(e.message);
  show(el("p", { class: "error", role: "alert" }, `${t("error")}: ${e.message}`));
}

/// A button that runs `action`, then redraws the page (unless `stay`: the action shows its own
/// result).
function act(label, action, cls, stay) {
  return el("button", {
    type: "button", class: cls || "",
    onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        await action();
        if (stay) ev.target.disabled = false; else route();
      } catch (e) { failed(e); }
    },
  }, label);
}

function signin(reason) {
  document.getElementById("nav").hidden = true;
  const hash = location.hash;
  const why = hash.includes("signin=wrong") ? t("wrong_link")
    : hash.includes("signin=limited") ? t("limited")
    : hash.includes("signin=unset") ? t("unset") : reason;
  const input = el("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const msg = el("p", { class: "error", role: "alert", id: "signin-error" }, why || "");
  show(el("form", {
    class: "card signin",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/ui/session", { token: input.value });
        location.hash = "#overview";
        start();
      } catch (e) { msg.textContent = e.message; }
    },
  },
  el("h1", {}, t("signin")),
  el("label", { for: "token" }, t("token")), input,
  el("p", { class: "help" }, t("signin_help")),
  msg,
  el("button", { type: "submit" }, t("signin"))));
}

function table(head, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

const ago = (ms) => {
  if (!ms) return "-";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 90 ? `${s}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
};

/// The total of an OpenMetrics counter family (all its label sets) in `text`.
function counter(text, name) {
  const prefix = `clawops_gateway_${name}_total`;
  return text.split("\n")
    .filter((l) => l.startsWith(prefix + " ") || l.startsWith(prefix + "{"))
    .reduce((sum, l) => sum + (Number(l.trim().split(/\s+/).pop()) || 0), 0);
}

const COUNTERS = ["messages_in", "messages_out", "llm_failures", "llm_retries", "node_execs", "tool_calls", "api_auth_failures"];

async function overview() {
  const me = routes;
  const [s, metrics] = await Promise.all([api("GET", "/api/status"),
    fetch("metrics", { credentials: "same-origin" }).then((r) => (r.ok ? r.text() : "")).catch(() => "")]);
  const channels = s.channels.map((c) => [c.name, c.bot || "-", c.ok ? t("ok") : (c.problem || t("problem")), String(c.approvedSenders ?? "-")]);
  const off = [...s.disabled, ...(s.tools.off || [])];
  const nodes = t("node_counts").replace("{c}", s.nodes.connected).replace("{p}", s.nodes.paired).replace("{w}", s.nodes.pending);
  draw(me, el("h1", {}, t("overview")),
    el("section", { class: "card" },
      el("h2", {}, t("health")),
      el("p", { class: s.ok ? "good" : "bad", id: "health" }, s.ok ? t("ok") : t("problem")),
      el("dl", {},
        el("dt", {}, "Agent"), el("dd", {}, `${s.agent.name} (${s.agent.id})`),
        el("dt", {}, t("model")), el("dd", {}, `${s.model.primary} ${s.model.configured ? "" : "— " + (s.model.problem || "")}`),
        el("dt", {}, t("cluster")), el("dd", { id: "cluster" }, s.cluster.access + (s.cluster.client ? "" : ` — ${t("no_client")}`)),
        el("dt", {}, t("nodes")), el("dd", { id: "node-counts" }, nodes),
        el("dt", {}, t("version")), el("dd", {}, s.version),
        el("dt", {}, t("uptime")), el("dd", {}, `${Math.floor(s.uptimeSeconds / 60)} min`),
        el("dt", {}, t("tools")), el("dd", {}, (s.tools.offered || []).join(", ") || t("none")))),
    el("section", { class: "card" }, el("h2", {}, t("channels")),
      table([t("name"), "bot", t("state"), t("approved_senders")], channels)),
    metrics ? el("section", { class: "card" }, el("h2", {}, t("counters")),
      el("dl", { id: "counters" }, COUNTERS.flatMap((c) => [el("dt", {}, t(`c_${c}`)), el("dd", {}, String(counter(metrics, c)))]))) : "",
    off.length ? el("section", { class: "card" }, el("h2", {}, t("disabled")),
      el("ul", { id: "disabled" }, off.map((d) => el("li", {}, d)))) : "");
}

/// One WebChat turn as server-sent events: each tool call as it starts (`onTool`), then the
/// answer, so a turn that waits for an approval shows what it waits on.
async function chatTurn(text, onTool) {
  const r = await fetch("api/chat", {
    method: "POST", credentials: "same-origin",
    headers: { ...CSRF, "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ chat: "webchat", text }),
  });
  if (!r.ok) {
    const data = await r.json().catch(() => null);
    if (r.status === 401) throw new Unauthorized(data && data.message);
    throw new Error((data && data.message) || `HTTP ${r.status}`);
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the connection ended before the answer");
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      const body = data.join("\n");
      if (event === "tool") onTool(body);
      else if (event === "reply") return JSON.parse(body);
      else if (event === "error") throw new Error(JSON.parse(body).message);
    }
  }
}

async function chat() {
  const me = routes;
  const past = await api("GET", "/api/chat?chat=webchat");
  const log = el("div", { class: "chatlog", "aria-live": "polite" },
    past.messages.map((m) => el("p", { class: m.role === "user" ? "me" : "bot" }, m.text)));
  const input = el("textarea", { id: "message", rows: 3, required: true });
  draw(me, el("h1", {}, t("chat")), log,
    el("form", {
      class: "chatform",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        input.value = "";
        const waiting = el("p", { class: "pending", "aria-busy": "true" }, "…");
        log.append(el("p", { class: "me" }, text), waiting);
        try {
          const r = await chatTurn(text, (call) => waiting.before(el("p", { class: "tool" }, `🔧 ${call}`)));
          log.append(el("p", { class: "bot" }, r.reply));
        } catch (e) {
          if (e instanceof Unauthorized) return signin(e.message);
          log.append(el("p", { class: "error" }, e.message));
        }
        waiting.remove();
      },
    }, el("label", { for: "message" }, t("message")), input, el("button", { type: "submit" }, t("send"))));
}

async function pairing() {
  const me = routes;
  const s = await api("GET", "/api/status");
  const sections = [];
  for (const c of s.channels.filter((c) => c.configured)) {
    const base = `/api/pairing/${encodeURIComponent(c.name)}`;
    const p = await api("GET", base);
    const rows = p.pending.map((r) => [`${r.sender || "-"} (${r.id})`, r.code, new Date(r.expiresAt).toLocaleTimeString(),
      el("span", {}, act(t("approve"), () => api("POST", `${base}/approve`, { code: r.code, notify: true })), " ",
        act(t("reject"), () => api("POST", `${base}/reject`, { code: r.code }), "secondary"))]);
    const approved = p.approved.map((id) => [id, act(t("revoke"), () => api("POST", `${base}/revoke`, { sender: id }), "secondary")]);
    sections.push(el("section", { class: "card" },
      el("h2", {}, `${c.name} — ${t("pending_codes")}`),
      rows.length ? table([t("sender"), t("code"), t("expires"), t("actions")], rows) : el("p", {}, t("no_pending")),
      el("h2", {}, `${t("approved_senders")}: ${p.approvedSenders}`),
      approved.length ? table([t("sender"), t("actions")], approved) : ""));
  }
  draw(me, el("h1", {}, t("pairing")), ...sections);
}

async function nodes() {
  const me = routes;
  const [n, waiting] = await Promise.all([api("GET", "/api/nodes"), api("GET", "/api/approvals")]);
  const node = (id, action) => api("POST", `/api/nodes/${action}`, { id });
  const pending = n.pending.map((p) => [p.displayName || "-", p.nodeId.slice(0, 12), p.platform, p.remoteIp || "-",
    el("span", {}, act(t("approve"), () => node(p.requestId, "approve")), " ", act(t("reject"), () => node(p.requestId, "reject"), "secondary"))]);
  const paired = n.paired.map((p) => [p.displayName || "-", p.nodeId.slice(0, 12), p.platform,
    p.revoked ? t("revoked") : p.connected ? t("connected") : t("disconnected"), p.connected ? t("now") : ago(p.lastSeenMs),
    p.revoked ? "" : act(t("revoke"), () => node(p.nodeId, "revoke"), "secondary")]);
  const resolve = (id, decision) => api("POST", "/api/approvals/resolve", { id, decision });
  const asks = waiting.map((w) => [w.node, el("code", {}, w.command), w.reason,
    el("span", {}, act(t("allow_once"), () => resolve(w.id, "allow-once")), " ",
      act(t("allow_always"), () => resolve(w.id, "allow-always")), " ",
      act(t("deny"), () => resolve(w.id, "deny"), "secondary"))]);
  const settings = await Promise.all(n.paired.filter((p) => !p.revoked)
    .map((p) => api("GET", `/api/nodes/${encodeURIComponent(p.nodeId)}/exec`)));
  draw(me, el("h1", {}, t("nodes")),
    el("section", { class: "card" }, el("h2", {}, t("approvals")),
      asks.length ? table([t("node"), t("command"), t("why"), t("actions")], asks) : el("p", {}, t("no_pending"))),
    el("section", { class: "card" }, el("h2", {}, t("pending_nodes")),
      pending.length ? table([t("name"), "id", t("platform"), t("address"), t("actions")], pending) : el("p", {}, t("no_pending"))),
    el("section", { class: "card" }, el("h2", {}, t("paired_nodes")),
      paired.length ? table([t("name"), "id", t("platform"), t("state"), t("last_seen"), t("actions")], paired) : el("p", {}, t("none"))),
    ...settings.map(execCard));
}

const choice = (id, label, value, options) => el("div", {},
  el("label", { for: id }, label),
  el("select", { id }, options.map((o) => el("option", { value: o, selected: o === value }, o))));

/// One node's exec settings: the policy and the allowlist editor. Edits go to the gateway, which
/// writes them to the node's NodePairing in a cluster.
function execCard(x) {
  const id = x.nodeId.slice(0, 12);
  const edit = (body) => api("POST", `/api/nodes/${encodeURIComponent(x.nodeId)}/exec`, body);
  const msg = el("p", { class: "error", role: "alert" });
  const tryEdit = async (body) => {
    try { await edit(body); route(); } catch (e) { if (e instanceof Unauthorized) throw e; msg.textContent = e.message; }
  };
  const policy = el("form", {
    class: "policy",
    onsubmit: (ev) => {
      ev.preventDefault();
      const v = (k) => document.getElementById(`${k}-${id}`).value;
      tryEdit({ security: v("security"), ask: v("ask"), askFallback: v("fallback") });
    },
  },
  choice(`security-${id}`, t("security"), x.security, ["deny", "allowlist", "full"]),
  choice(`ask-${id}`, t("ask"), x.ask, ["off", "on-miss", "always"]),
  choice(`fallback-${id}`, t("ask_fallback"), x.askFallback, ["deny", "full"]),
  el("button", { type: "submit" }, t("save")));
  const rows = x.allowlist.map((p) => [el("code", {}, p.pattern),
    p.lastUsed ? new Date(p.lastUsed).toLocaleString() : t("never"), p.lastCommand ? el("code", {}, p.lastCommand) : "-",
    act(t("remove"), () => edit({ remove: [p.pattern] }), "secondary")]);
  const input = el("input", { id: `pattern-${id}`, required: true, placeholder: "/usr/bin/uptime", "aria-describedby": `pattern-help-${id}` });
  const add = el("form", {
    class: "add",
    onsubmit: (ev) => { ev.preventDefault(); tryEdit({ add: [input.value.trim()] }); },
  }, el("label", { for: `pattern-${id}` }, t("pattern")), input, el("button", { type: "submit" }, t("add")),
  el("p", { class: "help", id: `pattern-help-${id}` }, t("pattern_help")));
  return el("section", { class: "card exec", "data-node": x.nodeId },
    el("h2", {}, `${x.displayName || id} — ${t("exec_policy")}`),
    policy,
    el("h3", {}, t("allowlist")),
    rows.length ? table([t("pattern"), t("last_used"), t("command"), t("actions")], rows) : el("p", {}, t("allowlist_empty")),
    add, msg,
    el("p", { class: "help" }, `${t("kept_in")}: ${x.source}`));
}

async function crons() {
  const me = routes;
  const list = await api("GET", "/api/crons");
  const out = el("pre", { class: "result", "aria-live": "polite" });
  const cards = list.map((c) => el("section", { class: "card" },
    el("h2", {}, c.name),
    el("dl", {},
      el("dt", {}, t("schedule")), el("dd", {}, el("code", {}, c.schedule), ` (${c.timeZone})`),
      el("dt", {}, t("next_run")), el("dd", {}, c.suspended ? t("suspended") : (c.nextRun || "-"))),
    c.lastRuns.length
      ? table([t("when"), t("outcome"), t("delivered"), t("summary")],
        c.lastRuns.map((r) => [new Date(r.ts).toLocaleString(), r.status, r.delivered ? "✓" : "-", r.summary]))
      : el("p", {}, t("nothing")),
    act(t("run_now"), async () => {
      const r = await api("POST", `/api/cron/${encodeURIComponent(c.name)}/run`);
      out.textContent = `${t("ran")} ${c.name}: ${r.run.status}${r.run.delivered ? " ✓" : ""}\n${r.run.summary}`;
    }, "", true)));
  draw(me, el("h1", {}, t("crons")), ...(cards.length ? cards : [el("p", {}, t("none"))]), out);
}

async function alerts() {
  const me = routes;
  const a = await api("GET", "/api/alerts");
  const told = a.told.map((x) => [x.object, x.reason, x.detail ? `${x.detail} → ${x.action}` : "-", new Date(x.since).toLocaleString()]);
  const cleared = a.cleared.map((x) => [x.object, x.reason + (x.gone ? ` (${t("gone")})` : ""), new Date(x.at).toLocaleString()]);
  draw(me, el("h1", {}, t("alerts")),
    a.enabled ? "" : el("section", { class: "card" }, el("h2", {}, t("alerts_off")), el("p", { id: "alerts-off" }, a.offReason)),
    el("section", { class: "card" }, el("h2", {}, t("told_now")),
      told.length ? table([t("object"), t("reason"), t("detail"), t("since_when")], told) : el("p", {}, t("all_clear"))),
    el("section", { class: "card" }, el("h2", {}, t("cleared_recently")),
      cleared.length ? table([t("object"), t("reason"), t("when")], cleared) : el("p", {}, t("nothing"))));
}

async function audit() {
  const me = routes;
  const since = new URLSearchParams(location.hash.split("?")[1] || "").get("since") || "24h";
  const log = await api("GET", `/api/audit?since=${encodeURIComponent(since)}`);
  const tools = log.tools.slice().reverse().map((r) => [new Date(r.ts).toLocaleString(), r.tool, r.outcome, `${r.durationMs} ms`, el("code", {}, r.arguments)]);
  const execs = log.execs.slice().reverse().map((r) => [new Date(r.ts).toLocaleString(), r.node, r.decision, r.exitCode ?? "-", el("code", {}, r.command)]);
  draw(me, el("h1", {}, t("audit")),
    el("p", {}, `${t("since")}: `, ...["1h", "24h", "7d"].map((s) => el("a", { href: `#audit?since=${s}`, class: s === since ? "current" : "" }, s, " "))),
    el("section", { class: "card" }, el("h2", {}, t("tool_calls")),
      tools.length ? table([t("when"), t("tool"), t("outcome"), t("took"), t("arguments")], tools) : el("p", {}, t("nothing"))),
    el("section", { class: "card" }, el("h2", {}, t("node_commands")),
      execs.length ? table([t("when"), t("node"), t("decision"), t("exit"), t("command")], execs) : el("p", {}, t("nothing"))));
}

const PAGES = { overview, chat, pairing, nodes, crons, alerts, audit };

function route() {
  const name = location.hash.replace(/^#/, "").split("?")[0] || "overview";
  if (name.startsWith("signin")) return signin();
  const page = PAGES[name] || overview;
  routes += 1;
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.dataset.page === name);
  }
  page().catch(failed);
}

async function start() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  if (location.hash.startsWith("#signin")) return signin();
  try {
    await api("GET", "/api/status");
  } catch (e) {
    // Not signed in yet: the form, without the API's wording meant for scripts.
    return e instanceof Unauthorized ? signin() : failed(e);
  }
  document.getElementById("nav").hidden = false;
  route();
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", async () => {
    await api("DELETE", "/ui/session").catch(() => {});
    location.hash = "";
    signin();
  });
  start();
});
