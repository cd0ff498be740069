// Drives the Control UI in Debian's Chromium (playwright-core, no browser download) through the
// owner's journey, for tests/it/ui.rs, which set up the gateway and the fakes and check what
// reached them. Prints one JSON object of what the browser saw; screenshots go to $SHOTS.
//
// Env: URL (the gateway, with its path prefix), TOKEN, SHOTS (a directory), ALLOW (the resolved
// path of `id` on the node), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const { URL: BASE, TOKEN, SHOTS, ALLOW } = process.env;
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const seen = {};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS, headless: true,
});
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, locale: "en-US" });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

  // A wrong token in the link: the sign-in page says so (in a context of its own, so that the
  // first load below starts with an empty cache).
  const other = await browser.newContext({ viewport: { width: 1100, height: 900 }, locale: "en-US" });
  const wrong = await other.newPage();
  await wrong.goto(`${BASE}/?token=not-the-token`);
  await wrong.waitForSelector("#signin-error:not(:empty)");
  seen.wrongToken = await wrong.textContent("#signin-error");
  await wrong.screenshot({ path: `${SHOTS}/signin-wrong.png`, fullPage: true });
  await other.close();

  // The tokenized link: signed in, the token gone from the address bar, the bot on Overview.
  let bytes = 0;
  const sizes = [];
  page.on("requestfinished", (r) => sizes.push(r.sizes().then((s) => { bytes += s.responseBodySize + s.responseHeadersSize; })));
  const started = Date.now();
  await page.goto(`${BASE}/?token=${TOKEN}`);
  await page.waitForSelector("#health");
  seen.interactiveMs = Date.now() - started;
  await Promise.all(sizes);
  seen.firstLoadBytes = bytes;
  seen.urlAfterSignIn = page.url();
  seen.overview = await page.textContent("main");

  // Pairing: reject one waiting sender, approve the other.
  await page.goto(`${BASE}/#pairing`);
  await page.getByRole("row", { name: /other/ }).getByRole("button", { name: "Reject" }).click();
  await page.waitForSelector("tr:has-text('stranger')");
  await page.getByRole("row", { name: /stranger/ }).getByRole("button", { name: "Approve" }).click();
  await page.waitForSelector("text=Nobody waits.");
  seen.pairing = await page.textContent("main");
  await shot("pairing");

  // Nodes: approve the waiting node, then see it connected.
  await page.goto(`${BASE}/#nodes`);
  await page.getByRole("button", { name: "Approve" }).first().click();
  // The node's own row, once the nodes page has rendered (only it has an exec card): the
  // overview's "0 connected, 1 paired" must not pass for it while that page is still shown.
  for (let i = 0; i < 60; i++) {
    await page.goto(`${BASE}/#overview`);
    await page.goto(`${BASE}/#nodes`);
    await page.waitForSelector("section.exec");
    const row = (await page.locator("tr", { hasText: "desk" }).last().textContent()) || "";
    if (row.includes("connected") && !row.includes("disconnected")) break;
    await page.waitForTimeout(500);
  }
  seen.nodes = await page.textContent("main");

  // The allowlist: `id -u` is asked about (nobody answers within a second: not run); the owner
  // adds the pattern on the node's card; the same command then runs without asking.
  const run = () => page.evaluate(async () => {
    const r = await fetch("api/nodes/run", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Clawops-Csrf": "1" },
      body: JSON.stringify({ node: "desk", command: "id -u", approvalTimeoutMs: 1000 }),
    });
    const body = await r.text();
    let exitCode = null;
    try { exitCode = JSON.parse(body).exitCode; } catch { /* an error text */ }
    return { status: r.status, body, exitCode };
  });
  seen.runBefore = await run();
  await page.goto(`${BASE}/#overview`);
  await page.goto(`${BASE}/#nodes`);
  const card = page.locator("section.exec").first();
  await card.getByLabel("Pattern").fill(ALLOW);
  await card.getByRole("button", { name: "Add" }).click();
  await page.waitForSelector(`section.exec code:text-is("${ALLOW}")`);
  seen.runAfter = await run();
  // Under a loaded CI machine the node may be between connections for a moment; an answer of
  // the policy (200 or 403) is not retried, so a pattern that did not apply still fails below.
  for (let i = 0; i < 5 && ![200, 403].includes(seen.runAfter.status); i++) {
    await page.waitForTimeout(1000);
    seen.runAfter = await run();
  }
  // The card shows the pattern's last use; it is read when the page loads.
  for (let i = 0; ; i++) {
    await page.goto(`${BASE}/#overview`);
    await page.goto(`${BASE}/#nodes`);
    await page.waitForSelector("section.exec");
    if ((await page.locator("section.exec td:has-text('id -u')").count()) > 0) break;
    if (i >= 20) {
      throw new Error(`the exec card never showed the run of id -u; the run: ${JSON.stringify(seen.runAfter)}; the card: ${await page.locator("section.exec").first().textContent()}`);
    }
    await page.waitForTimeout(500);
  }
  seen.execCard = await page.locator("section.exec").first().textContent();
  await shot("nodes");

  // A page whose data comes late does not draw over the page asked for after it: the
  // overview's status answers 1.5 s late, the nodes page is asked for at once.
  await page.route("**/api/status", async (route) => {
    await new Promise((done) => setTimeout(done, 1500));
    await route.continue();
  });
  await page.goto(`${BASE}/#overview`);
  await page.goto(`${BASE}/#nodes`);
  await page.waitForSelector("h1:text-is('Nodes')");
  await page.waitForTimeout(2500);
  seen.afterLatePage = await page.textContent("h1");
  await page.unroute("**/api/status");

  // Chat: the assistant looks at the nodes (its tool call is shown as it starts), then answers.
  await page.goto(`${BASE}/#chat`);
  await page.fill("#message", "which machines do I have?");
  await page.getByRole("button", { name: "Send" }).click();
  await page.waitForSelector(".chatlog .tool");
  seen.toolBeforeAnswer = (await page.$$(".chatlog .bot")).length === 0;
  await page.waitForSelector(".chatlog .bot");
  seen.chat = await page.textContent(".chatlog .bot");
  seen.chatTools = await page.$$eval(".chatlog .tool", (ps) => ps.map((p) => p.textContent));
  // Back later: the conversation is still there.
  await page.goto(`${BASE}/#overview`);
  await page.goto(`${BASE}/#chat`);
  await page.waitForSelector(".chatlog .bot");
  seen.chatAgain = await page.textContent(".chatlog");
  await shot("chat");

  // Crons: Run now.
  await page.goto(`${BASE}/#crons`);
  await page.getByRole("button", { name: "Run now" }).first().click();
  await page.waitForSelector("pre.result:not(:empty)", { timeout: 60000 });
  seen.cronRun = await page.textContent("pre.result");
  await page.goto(`${BASE}/#overview`);
  await page.goto(`${BASE}/#crons`);
  await page.waitForSelector("h1:text-is('Crons')");
  seen.crons = await page.textContent("main");
  await shot("crons");

  await page.goto(`${BASE}/#alerts`);
  await page.waitForSelector("h1:text-is('Alerts')");
  seen.alerts = await page.textContent("main");
  await shot("alerts");

  await page.goto(`${BASE}/#audit`);
  await page.waitForSelector("h1:text-is('Audit')");
  await shot("audit");

  // Overview again: the node connected and the counters of what happened.
  await page.goto(`${BASE}/#overview`);
  await page.waitForSelector("#counters");
  seen.nodeCounts = await page.textContent("#node-counts");
  seen.disabled = await page.textContent("#disabled");
  seen.counters = await page.$$eval("#counters dt", (dts) => Object.fromEntries(
    dts.map((dt) => [dt.textContent, Number(dt.nextElementSibling.textContent)])));
  await shot("overview");

  // A state-changing request with the cookie but without the UI's header, as another site's
  // form would send it: refused.
  seen.csrfStatus = await page.evaluate(async () => (await fetch("api/pairing/telegram/approve", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code: "AAAAAAAA", notify: false }),
  })).status);

  // Chinese browsers get Chinese pages.
  const zh = await browser.newContext({ locale: "zh-CN" });
  const zpage = await zh.newPage();
  await zpage.goto(`${BASE}/?token=${TOKEN}`);
  await zpage.waitForSelector("#health");
  seen.zhNav = await zpage.textContent("nav");
  await zpage.goto(`${BASE}/#nodes`);
  await zpage.waitForSelector("section.exec");
  await zpage.screenshot({ path: `${SHOTS}/nodes-zh.png`, fullPage: true });
  await zh.close();

  // Accessibility: axe-core on each page (its script injected past the CSP in this context only).
  const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  const a11y = await browser.newContext({ bypassCSP: true });
  const apage = await a11y.newPage();
  await apage.goto(`${BASE}/?token=${TOKEN}`);
  await apage.waitForSelector("#health");
  seen.axe = {};
  for (const name of ["overview", "pairing", "nodes", "crons", "chat", "alerts", "audit"]) {
    await apage.goto(`${BASE}/#${name}`);
    // That page's own heading: right after a hash change the previous page is still shown.
    await apage.waitForSelector(`h1:text-is('${name[0].toUpperCase()}${name.slice(1)}')`);
    await apage.waitForTimeout(300);
    await apage.evaluate(axeSource);
    const result = await apage.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
    seen.axe[name] = result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  }
  // The sign-in form too.
  await apage.evaluate(async () => fetch("ui/session", { method: "DELETE", headers: { "X-Clawops-Csrf": "1" } }));
  await apage.goto(`${BASE}/`);
  await apage.waitForSelector("#token");
  await apage.evaluate(axeSource);
  const signin = await apage.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  seen.axe.signin = signin.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  await a11y.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
