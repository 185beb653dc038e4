// Patchwell's console in a real browser: Debian's chromium, headless,
// driven by playwright-core, against a running `patchwell demo`, over
// HTTPS with HTTP/2 as a deployment serves it.
//
//   node console.test.mjs CONSOLE_URL USER PASSWORD ARTIFACT_DIR
//
// The browser accepts exactly the server's certificate (by the hash of its
// public key) and no other. It signs in, checks that the page came over
// HTTP/2 with the security headers and a Secure session cookie and that no
// Content-Security-Policy violation happened, reads the dashboard, approves an update, starts a rollout
// and watches it finish through the live progress, halts another,
// downloads the monthly report (CSV and PDF), and keeps a screenshot of every page it
// saw in ARTIFACT_DIR. Last it signs out and checks that the old session
// cookie no longer opens the console. Any failed expectation exits non-zero with what
// was expected and what the page showed.
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";

const [url, user, password, artifacts] = process.argv.slice(2);
if (!url || !user || !password || !artifacts) {
  console.error("usage: node console.test.mjs CONSOLE_URL USER PASSWORD ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const origin = new URL(url).origin;

function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

// The base64 SHA-256 of the server certificate's public key, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
function serverKeyHash(u) {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: u.hostname, port: Number(u.port || 443), servername: u.hostname, rejectUnauthorized: false, ALPNProtocols: ["h2"] },
      () => {
        const spki = socket.getPeerX509Certificate().publicKey.export({ type: "spki", format: "der" });
        socket.end();
        resolve(createHash("sha256").update(spki).digest("base64"));
      },
    );
    socket.on("error", reject);
  });
}
const target = new URL(url);
expect(target.protocol === "https:", `the console served over HTTPS, got ${url}`);
const keyHash = await serverKeyHash(target);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    `--ignore-certificate-errors-spki-list=${keyHash}`,
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
// A viewer far from UTC: times must show in their own zone.
const context = await browser.newContext({
  timezoneId: "Asia/Tokyo",
  locale: "en-GB",
  acceptDownloads: true,
  viewport: { width: 1400, height: 1000 },
});
const page = await context.newPage();
page.on("dialog", (d) => d.accept());
// A Content-Security-Policy violation is reported on the console: any at
// all fails the test, as it would break the page for a user.
const violations = [];
page.on("console", (m) => {
  if (m.text().includes("Content Security Policy")) violations.push(m.text());
});
let shots = 0;
async function shot(name) {
  shots += 1;
  await page.screenshot({
    path: join(artifacts, `${String(shots).padStart(2, "0")}-${name}.png`),
    fullPage: true,
  });
}
async function heading() {
  return (await page.locator("h1").first().textContent()).trim();
}

try {
  // Sign in: the console sends us to the form first.
  await page.goto(`${origin}/console`);
  expect(page.url().includes("/console/login"), `the sign-in page, got ${page.url()}`);
  await shot("sign-in");
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill("wrong password, surely");
  await page.getByRole("button", { name: "Sign in" }).click();
  expect(
    (await page.getByRole("alert").textContent()).includes("wrong user name or password"),
    "a wrong password to be refused with a reason",
  );
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  const dashboardResponse = page.waitForResponse(`${origin}/console`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${origin}/console`);
  const headers = (await dashboardResponse).headers();

  // Over HTTP/2, with the headers that keep the console safe in a browser.
  const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  expect(protocol === "h2", `the console over HTTP/2, got ${protocol}`);
  expect(
    (headers["content-security-policy"] || "").includes("script-src 'self'") &&
      (headers["content-security-policy"] || "").includes("frame-ancestors 'none'"),
    `a Content-Security-Policy, got ${headers["content-security-policy"]}`,
  );
  expect((headers["strict-transport-security"] || "").startsWith("max-age="), "HSTS over HTTPS");
  expect(headers["x-content-type-options"] === "nosniff", "nosniff");
  const session = (await context.cookies()).find((c) => c.name === "patchwell_session");
  expect(session && session.secure && session.httpOnly && session.sameSite === "Strict",
    `a Secure, HttpOnly, SameSite=Strict session cookie, got ${JSON.stringify(session)}`);

  // The dashboard.
  expect((await heading()) === "Dashboard", "the dashboard");
  // A posture worked out before the fleet's last reports says so and the
  // page reloads itself; wait for one that counts the demo's hosts.
  for (let i = 0; i < 30; i++) {
    const waiting = await page.locator('[data-test="posture-behind"], [data-test="posture-pending"]').count();
    if (waiting === 0) break;
    await page.waitForTimeout(1000);
    await page.reload();
  }
  const compliance = await page.locator('[data-test="compliance"]').textContent();
  expect(/^\d+(\.\d)?%$/.test(compliance.trim()), `a compliance figure, got ${compliance}`);
  const counted = (await page.locator('[data-test="compliance"] + .label').textContent()).match(/(\d+) of (\d+) hosts compliant/);
  expect(counted && Number(counted[2]) >= 60, `compliance over the demo's hosts, got ${counted}`);
  const time = page.locator("time[datetime]").first();
  const shown = await time.textContent();
  const utc = await time.getAttribute("title");
  expect(utc && utc.endsWith("UTC") && !shown.endsWith("UTC"), `a time in the viewer's zone, got ${shown} (${utc})`);
  // Keyboard: the first Tab reaches the skip link, which leads to the content.
  await page.keyboard.press("Tab");
  expect(
    (await page.evaluate(() => document.activeElement.textContent)) === "Skip to content",
    "the skip link first in the tab order",
  );
  await shot("dashboard");

  // Approve an update that waits for a decision.
  await page.getByRole("link", { name: "Updates", exact: true }).click();
  await page.getByLabel("Show").selectOption("pending");
  await page.getByRole("button", { name: "Show" }).click();
  const row = page.locator("tr[data-title]").first();
  const title = await row.getAttribute("data-title");
  expect(title, "an update waiting for a decision");
  await shot("updates-pending");
  await row.getByLabel(`Select ${title}`, { exact: true }).check();
  await page.getByRole("button", { name: "Approve selected" }).click();
  expect(
    (await page.getByRole("status").textContent()).includes("1 title approved."),
    `the notice that ${title} was approved`,
  );
  await page.goto(`${origin}/console/updates?only=approved&q=${encodeURIComponent(title.split("=")[0])}`);
  expect(
    (await page.locator(`tr[data-title="${title}"] [data-test="decision"]`).textContent()) === "approved",
    `${title} listed as approved`,
  );
  await shot("updates-approved");

  // Start a rollout of the approved updates and watch it finish live.
  await page.getByRole("link", { name: "Rollouts", exact: true }).click();
  await page.getByLabel("Name").fill("browser-rollout");
  await page.getByLabel("Updates").selectOption("approved");
  await page.getByLabel("Hosts (a query; empty: every host)").fill("tag = simulated and tag != flaky");
  await page.getByLabel("Business days between pilot and the rest").fill("0");
  await page.getByLabel("Reason (the chain of communication is told)").fill("Browser test: the approved updates.");
  await shot("rollout-form");
  await page.getByRole("button", { name: "Start rollout" }).click();
  await page.waitForURL(/\/console\/rollouts\/browser-rollout/);
  expect((await heading()) === "Rollout browser-rollout", "the new rollout's page");
  await shot("rollout-started");
  await page.locator('[data-test="status"]', { hasText: "complete" }).waitFor({ timeout: 240_000 });
  const progress = await page.locator(".bar").first().getAttribute("aria-label");
  // Every host succeeded but those an exemption covers (the demo exempts
  // its servers from one package).
  const counts = /^(\d+) of (\d+) succeeded, 0 failed, 0 in progress, 0 rolled back, (\d+) exempt$/.exec(progress);
  expect(
    counts && Number(counts[1]) + Number(counts[3]) === Number(counts[2]) && Number(counts[1]) > 0,
    `every host not exempt to succeed, got "${progress}"`,
  );
  await shot("rollout-complete");

  // A rollout under the demo's Patch Tuesday policy waits for the policy's
  // next scheduled time; halt it before it starts. The hosts that fail
  // their installs were left out above, so they still have updates.
  await page.getByRole("link", { name: "Rollouts", exact: true }).click();
  await page.getByLabel("Name").fill("browser-scheduled");
  await page.getByLabel("Updates").selectOption("security");
  await page.getByLabel("Hosts (a query; empty: every host)").fill("tag = flaky");
  await page.getByLabel("Policy (its maintenance windows and schedule)").selectOption("workstations");
  await page.getByLabel("Reason (the chain of communication is told)").fill("Browser test: next Patch Tuesday.");
  await page.getByRole("button", { name: "Start rollout" }).click();
  await page.waitForURL(/\/console\/rollouts\/browser-scheduled/);
  const notice = await page.getByRole("status").textContent();
  expect(notice.includes("the pilot ring starts at"), `the notice says when it starts, got "${notice}"`);
  expect(
    (await page.locator("dt", { hasText: "Scheduled start" }).count()) === 1,
    "the page shows the scheduled start",
  );
  await shot("rollout-scheduled");
  const status = page.locator('[data-test="status"]');
  expect((await status.textContent()) === "running", "the scheduled rollout runs, waiting");
  await page.getByLabel("Reason").first().fill("Browser test: change freeze.");
  await page.getByRole("button", { name: "Halt" }).click();
  await page.waitForLoadState();
  await page.goto(`${origin}/console/rollouts/browser-scheduled`);
  expect((await status.textContent()) === "halted", "the rollout halted");
  const why = await page.locator("p:has([data-test=status]) .bad").textContent();
  expect(why.includes("Browser test: change freeze."), `the page says why it halted, got "${why}"`);
  await shot("rollout-halted");

  // The monthly report: the page, and its CSV downloaded.
  await page.getByRole("link", { name: "Reports", exact: true }).click();
  await shot("reports");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download as CSV" }).click(),
  ]);
  const csvPath = join(artifacts, download.suggestedFilename());
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, "utf8");
  expect(csv.startsWith("section,item,value,detail\n"), "a CSV report");
  expect(csv.includes("\nrollouts,browser-rollout,"), "the new rollout in the report");
  const [pdfDownload] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download as PDF" }).click(),
  ]);
  const pdfPath = join(artifacts, pdfDownload.suggestedFilename());
  await pdfDownload.saveAs(pdfPath);
  const pdf = readFileSync(pdfPath);
  expect(pdf.subarray(0, 5).toString() === "%PDF-", "a PDF report");
  expect(pdfDownload.suggestedFilename().endsWith(".pdf"), "named as a PDF");
  await page.getByRole("link", { name: /This month's report/ }).click();
  expect((await heading()).startsWith("Compliance report"), "the monthly report page");
  expect((await page.locator("svg.chart").count()) === 1, "the compliance chart");
  await shot("monthly-report");

  // Every other page answers and shows its heading.
  for (const [path, name] of [
    ["/console/hosts", "Hosts"],
    ["/console/advisories?only=reaching", "Advisories"],
    ["/console/plans/approvals", "Approvals"],
    ["/console/plans/exemptions", "Exemptions"],
    ["/console/deferrals", "Deferral requests"],
    ["/console/audit", "Audit log"],
    ["/console/users", "Users"],
    ["/console/procedure", "Procedure"],
  ]) {
    await page.goto(`${origin}${path}`);
    expect((await heading()) === name, `the ${name} page, got ${await heading()}`);
    await shot(name.toLowerCase().replace(/ /g, "-"));
  }
  await page.goto(`${origin}/console/hosts`);
  await page.locator("tbody tr a").first().click();
  expect((await heading()).startsWith("Host "), "a host's page");
  await shot("host");
  await page.goto(`${origin}/console/advisories?only=reaching`);
  await page.locator("tbody tr a").first().click();
  expect((await page.locator("h2").first().textContent()).startsWith("Hosts it reaches"), "an advisory's page");
  await shot("advisory");
  expect(violations.length === 0, `no Content-Security-Policy violation, got ${violations.join("; ")}`);

  // Signing out ends the session on the server: the old cookie, put back,
  // opens nothing.
  const before = (await context.cookies()).find((c) => c.name === "patchwell_session");
  await page.goto(`${origin}/console`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/console\/login/);
  await context.addCookies([before]);
  await page.goto(`${origin}/console`);
  expect(page.url().includes("/console/login"), `the old session refused after signing out, got ${page.url()}`);
  await shot("signed-out");
  console.log(`browser: ${shots} pages checked over ${protocol}; screenshots in ${artifacts}`);
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(`browser test failed on ${page.url()}: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
